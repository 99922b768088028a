// Package crawler turns public sources into documents and hands every
// document through the matcher to incidents. Each source lives in its own
// sub-package (crawler/github, …); the hand-off in this package is shared by
// all of them so provenance and counting are the same everywhere.
package crawler

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/matcher"
)

// Document is one piece of public text with where it came from.
type Document struct {
	Source    string // "github", "gist", …
	EventID   string
	EventType string
	Repo      string
	Commit    string
	Path      string
	Actor     string
	Title     string // of the paste, gist, issue or pull request, if any
	URL       string // the page the text is on
	// AnchorLines appends "#L<line>" to URL for a finding (blob URLs).
	AnchorLines bool
	// LineMap maps a line of Text (1-based) to the line in the original file,
	// for texts assembled from parts (a patch's added lines). nil: identity.
	LineMap []int
	// Private says the text is not publicly readable (an event of a private
	// repository in an organisation's feed); Reach is its audience where
	// known. An Exposer fills them in for documents with findings.
	Private bool
	Reach   int
	EventAt time.Time
	// FetchedAt is when the text was read from the source (zero: unknown).
	FetchedAt time.Time
	// Via is how the text was reached: "" or "live", or "archive" for
	// events backfilled from GH Archive after a gap.
	Via  string
	Text []byte
}

// Recorder receives findings; incidents.Service is the real one.
type Recorder interface {
	Record(ctx context.Context, findings []Finding) error
}

// Pipeline scans documents with the current key set and records findings.
type Pipeline struct {
	keys     *keys.Registry
	recorder Recorder
	now      func() time.Time

	docs     *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	findings *prometheus.CounterVec

	dedup       *contentStore
	dedupHits   *prometheus.CounterVec
	dedupErrors prometheus.Counter

	revoker   Revoker // optional: see WithRevoker
	revokeLog *slog.Logger

	exposer       Exposer // optional: see WithExposer
	exposeLog     *slog.Logger
	exposeLookups *prometheus.CounterVec
}

// NewPipeline returns a Pipeline. reg may be nil (tests).
func NewPipeline(registry *keys.Registry, recorder Recorder, reg prometheus.Registerer) *Pipeline {
	p := &Pipeline{
		keys:     registry,
		recorder: recorder,
		now:      time.Now,
		docs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "leakwatch", Subsystem: "crawler", Name: "documents_scanned_total",
			Help: "Documents scanned, by source.",
		}, []string{"source"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "leakwatch", Subsystem: "crawler", Name: "bytes_scanned_total",
			Help: "Bytes scanned, by source.",
		}, []string{"source"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "leakwatch", Subsystem: "crawler", Name: "findings_total",
			Help: "Registered keys found, by source.",
		}, []string{"source"}),
		dedupHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "leakwatch", Subsystem: "crawler", Name: "documents_deduplicated_total",
			Help: "Documents not scanned again because the same content was scanned recently, by source.",
		}, []string{"source"}),
		dedupErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "leakwatch", Subsystem: "crawler", Name: "dedup_errors_total",
			Help: "Failed content de-duplication lookups or stores (the documents were scanned anyway).",
		}),
	}
	if reg != nil {
		reg.MustRegister(p.docs, p.bytes, p.findings, p.dedupHits, p.dedupErrors)
	}
	return p
}

// WithDedup turns on content de-duplication through PostgreSQL: content of
// 16 KiB or more is remembered by hash for ttl (0 turns it off); smaller
// texts are cheaper to scan again than to look up. It returns p.
func (p *Pipeline) WithDedup(pool *pgxpool.Pool, ttl time.Duration) *Pipeline {
	if ttl > 0 {
		p.dedup = &contentStore{pool: pool, ttl: ttl, minBytes: dedupMinBytes}
	}
	return p
}

// Process scans docs and records every finding. It returns the number of
// findings recorded; on error nothing is lost, because recording is
// idempotent and the caller's job is retried. With de-duplication on, text
// already scanned recently (the same patch pushed to many forks) is not
// scanned again: its remembered matches are recorded at the new location.
func (p *Pipeline) Process(ctx context.Context, docs []Document) (int, error) {
	snap := p.keys.Current()
	results := make([][]matcher.Finding, len(docs))
	done := make([]bool, len(docs))
	if p.dedup != nil {
		if err := p.dedup.lookup(ctx, snap, docs, results, done); err != nil {
			// De-duplication saves work; it is never a reason to miss a leak.
			p.dedupErrors.Inc()
			clear(done)
		}
	}
	var fresh []int
	for i := range docs {
		d := &docs[i]
		if done[i] {
			p.dedupHits.WithLabelValues(d.Source).Inc()
			continue
		}
		p.docs.WithLabelValues(d.Source).Inc()
		p.bytes.WithLabelValues(d.Source).Add(float64(len(d.Text)))
		results[i] = snap.Set.Scan(d.Text)
		fresh = append(fresh, i)
	}
	if p.dedup != nil && len(fresh) > 0 {
		if err := p.dedup.store(ctx, snap, docs, results, fresh); err != nil {
			p.dedupErrors.Inc()
		}
	}
	var out []Finding
	for i := range docs {
		d := &docs[i]
		found := results[i]
		if len(found) == 0 {
			continue
		}
		detected := p.now()
		revoked := p.revokeDocument(ctx, d, found)
		p.expose(ctx, d)
		// Titles and paths travel with the finding into the incident, its
		// alerts and webhooks: a key in an issue title or a paste's name
		// must not travel with them.
		title, path := redactKeys(snap.Set, d.Title), redactKeys(snap.Set, d.Path)
		for j, m := range found {
			line := m.Line
			if d.LineMap != nil && line >= 1 && line <= len(d.LineMap) {
				line = d.LineMap[line-1]
			}
			url := d.URL
			if d.AnchorLines && url != "" {
				url += "#L" + strconv.Itoa(line)
			}
			for _, k := range snap.Keys(m.Fingerprint) {
				out = append(out, Finding{
					KeyID: k.ID, OrgID: k.OrgID, Fingerprint: m.Fingerprint,
					Source: d.Source, EventID: d.EventID, EventType: d.EventType,
					URL: url, Repo: d.Repo, Commit: d.Commit, Path: path,
					Line: line, Column: m.Column, Encoding: m.Encoding,
					Actor: d.Actor, Preview: m.Preview, Title: title, Private: d.Private, Reach: d.Reach,
					EventAt: d.EventAt, FetchedAt: d.FetchedAt, DetectedAt: detected, Revoked: revoked[j], Via: d.Via,
				})
				p.findings.WithLabelValues(d.Source).Inc()
			}
		}
	}
	if len(out) == 0 {
		return 0, nil
	}
	if err := p.recorder.Record(ctx, out); err != nil {
		return 0, fmt.Errorf("record %d findings: %w", len(out), err)
	}
	return len(out), nil
}

// redactKeys replaces every registered key found in a short text (a title,
// a path) with asterisks, as previews do.
func redactKeys(set *matcher.Set, s string) string {
	if s == "" {
		return s
	}
	found := set.Scan([]byte(s))
	if len(found) == 0 {
		return s
	}
	hidden := make([]bool, len(s))
	for _, f := range found {
		for k := max(f.Offset, 0); k < f.Offset+f.Length && k < len(s); k++ {
			hidden[k] = true
		}
	}
	var out strings.Builder
	for k := 0; k < len(s); k++ {
		if !hidden[k] {
			out.WriteByte(s[k])
			continue
		}
		out.WriteString("********")
		for k+1 < len(s) && hidden[k+1] {
			k++
		}
	}
	return out.String()
}
