package crawler

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/matcher"
)

// dedupMinBytes: shorter texts are scanned faster than they are looked up.
// The matcher reads tens of kilobytes in well under the millisecond a lookup
// and a store cost in PostgreSQL; in the crawl benchmark, looking up every
// 1.5 KB patch cost a quarter of the throughput.
const dedupMinBytes = 16 << 10

// contentStore remembers, by hash, what the matcher found in recently
// scanned content (crawl_content). A row is trusted only if it was scanned
// with the current key-set version (bumped in the transaction of every change
// to keys), so a key registered or rotated since is never missed.
type contentStore struct {
	pool      *pgxpool.Pool
	ttl       time.Duration
	minBytes  int
	lastPrune atomic.Int64
}

// storedMatch is a matcher finding without what depends on the location.
type storedMatch struct {
	Fingerprint string `json:"f"`
	Provider    string `json:"p,omitempty"`
	Line        int    `json:"l"`
	Column      int    `json:"c"`
	Encoding    string `json:"e"`
	Preview     string `json:"v"`
}

func contentHash(text []byte) []byte {
	sum := sha256.Sum256(text)
	return sum[:]
}

// lookup fills results and done for documents whose content is remembered.
func (c *contentStore) lookup(ctx context.Context, snap *keys.Snapshot, docs []Document, results [][]matcher.Finding, done []bool) error {
	byHash := map[string][]int{}
	var hashes [][]byte
	for i := range docs {
		if len(docs[i].Text) < c.minBytes {
			continue
		}
		h := contentHash(docs[i].Text)
		if _, ok := byHash[string(h)]; !ok {
			hashes = append(hashes, h)
		}
		byHash[string(h)] = append(byHash[string(h)], i)
	}
	if len(hashes) == 0 {
		return nil
	}
	// The key set's version is read first (keys owns it): a key changed
	// after that read was equally missed when it was one subquery.
	version, err := keys.KeysetVersion(ctx, c.pool)
	if err != nil {
		return fmt.Errorf("look up content: %w", err)
	}
	rows, err := c.pool.Query(ctx, `
		SELECT hash, matches FROM crawl_content
		WHERE hash = ANY($1) AND scanned_at > now() - make_interval(secs => $2)
			AND keyset_version >= $3`,
		hashes, c.ttl.Seconds(), version)
	if err != nil {
		return fmt.Errorf("look up content: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h []byte
		var raw []byte
		if err := rows.Scan(&h, &raw); err != nil {
			return fmt.Errorf("look up content: %w", err)
		}
		var ms []storedMatch
		if err := json.Unmarshal(raw, &ms); err != nil {
			continue
		}
		found := make([]matcher.Finding, len(ms))
		for j, m := range ms {
			found[j] = matcher.Finding{Fingerprint: m.Fingerprint, Provider: m.Provider, Line: m.Line, Column: m.Column, Encoding: m.Encoding, Preview: m.Preview}
		}
		for _, i := range byHash[string(h)] {
			results[i], done[i] = found, true
		}
	}
	return rows.Err()
}

// store remembers what was found in the freshly scanned documents.
func (c *contentStore) store(ctx context.Context, snap *keys.Snapshot, docs []Document, results [][]matcher.Finding, fresh []int) error {
	if snap.Version == 0 {
		return nil
	}
	seen := map[string]bool{}
	var hashes [][]byte
	var matches []string
	for _, i := range fresh {
		if len(docs[i].Text) < c.minBytes {
			continue
		}
		h := contentHash(docs[i].Text)
		if seen[string(h)] {
			continue
		}
		seen[string(h)] = true
		ms := make([]storedMatch, len(results[i]))
		for j, f := range results[i] {
			ms[j] = storedMatch{Fingerprint: f.Fingerprint, Provider: f.Provider, Line: f.Line, Column: f.Column, Encoding: f.Encoding, Preview: f.Preview}
		}
		b, err := json.Marshal(ms)
		if err != nil {
			return fmt.Errorf("encode matches: %w", err)
		}
		hashes = append(hashes, h)
		matches = append(matches, string(b))
	}
	if len(hashes) == 0 {
		return nil
	}
	_, err := c.pool.Exec(ctx, `
		INSERT INTO crawl_content (hash, matches, keyset_version, scanned_at)
		SELECT h, m::jsonb, $3, now() FROM unnest($1::bytea[], $2::text[]) AS t (h, m)
		ON CONFLICT (hash) DO UPDATE SET matches = EXCLUDED.matches, keyset_version = EXCLUDED.keyset_version, scanned_at = EXCLUDED.scanned_at
		WHERE crawl_content.keyset_version <= EXCLUDED.keyset_version`, hashes, matches, snap.Version)
	if err != nil {
		return fmt.Errorf("remember content: %w", err)
	}
	now := time.Now()
	if last := c.lastPrune.Load(); now.Sub(time.Unix(0, last)) > time.Minute && c.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		if _, err := c.pool.Exec(ctx, `DELETE FROM crawl_content WHERE scanned_at < now() - make_interval(secs => $1)`, c.ttl.Seconds()); err != nil {
			return fmt.Errorf("prune content: %w", err)
		}
	}
	return nil
}
