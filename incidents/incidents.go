// Package incidents owns incidents: one per exposure of a registered key,
// with every sighting recorded as an occurrence, and the jobs that follow
// (alerts now; containment and the rest of the workflow later).
package incidents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/internal/jobs"
)

// Finding is one sighting of a registered key, with its provenance. It never
// holds the secret: Preview is already redacted by the matcher.
type Finding struct {
	KeyID       int64
	OrgID       int64
	Fingerprint string
	Source      string // "github", "gist", "pastebin", …
	EventID     string
	EventType   string
	URL         string // link to the exact place, with a line anchor where possible
	Repo        string
	Commit      string
	Path        string
	Line        int
	Column      int
	Encoding    string
	Actor       string
	Preview     string
	EventAt     time.Time // when the source says it happened (zero if unknown)
	DetectedAt  time.Time
}

// dedupKey identifies a sighting, so recording it twice is a no-op.
func (f Finding) dedupKey() string {
	h := sha256.New()
	for _, s := range []string{f.Source, f.EventID, f.URL, f.Repo, f.Commit, f.Path, strconv.Itoa(f.Line), strconv.Itoa(f.Column), f.Encoding} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

var errReplay = errors.New("sighting already recorded under another incident")

// Service records findings and reads incidents.
type Service struct {
	pool   *pgxpool.Pool
	river  *jobs.Client
	logger *slog.Logger
}

// NewService returns a Service. river may be an insert-only client.
func NewService(pool *pgxpool.Pool, riverClient *jobs.Client, logger *slog.Logger) *Service {
	return &Service{pool: pool, river: riverClient, logger: logger}
}

// Record stores each finding: the first sighting of a key opens an incident
// and, in the same transaction, queues its alert; later sightings while it is
// open become occurrences of it. Recording the same sighting again changes
// nothing, so callers may retry freely.
func (s *Service) Record(ctx context.Context, findings []Finding) error {
	for _, f := range findings {
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.recordTx(ctx, tx, f) })
		if err != nil && !errors.Is(err, errReplay) {
			return fmt.Errorf("record finding of key %d: %w", f.KeyID, err)
		}
	}
	return nil
}

func (s *Service) recordTx(ctx context.Context, tx pgx.Tx, f Finding) error {
	if f.DetectedAt.IsZero() {
		f.DetectedAt = time.Now()
	}
	seen := f.EventAt
	if seen.IsZero() {
		seen = f.DetectedAt
	}
	var incidentID int64
	var opened bool
	// The partial unique index on open incidents makes concurrent first
	// sightings of one key converge on a single incident.
	err := tx.QueryRow(ctx, `
		INSERT INTO incidents (org_id, key_id, first_seen_at, last_seen_at, source_url)
		VALUES ($1, $2, $3, $3, $4)
		ON CONFLICT (key_id) WHERE state = 'open' DO UPDATE
			SET last_seen_at = GREATEST(incidents.last_seen_at, EXCLUDED.last_seen_at)
		RETURNING id, (xmax = 0)`, f.OrgID, f.KeyID, seen, f.URL).Scan(&incidentID, &opened)
	if err != nil {
		return fmt.Errorf("open or find incident: %w", err)
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO occurrences (incident_id, key_id, dedup_key, source, event_id, event_type, url, repo,
			commit_sha, path, line, col, encoding, actor, preview, event_at, detected_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (key_id, dedup_key) DO NOTHING`,
		incidentID, f.KeyID, f.dedupKey(), f.Source, f.EventID, f.EventType, f.URL, f.Repo,
		f.Commit, f.Path, f.Line, f.Column, f.Encoding, f.Actor, f.Preview, nullTime(f.EventAt), f.DetectedAt)
	if err != nil {
		return fmt.Errorf("insert occurrence: %w", err)
	}
	if tag.RowsAffected() == 0 && opened {
		// A replay of a sighting already recorded under an earlier incident:
		// roll back rather than open an incident for old news.
		return errReplay
	}
	if opened {
		if _, err := s.river.InsertTx(ctx, tx, NotifyArgs{IncidentID: incidentID}, nil); err != nil {
			return fmt.Errorf("queue alert: %w", err)
		}
		s.logger.Info("incident opened", slog.Int64("incident_id", incidentID), slog.Int64("key_id", f.KeyID), slog.Int64("org_id", f.OrgID))
	}
	return nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Summary is an incident as the list page shows it.
type Summary struct {
	ID          int64
	OrgName     string
	KeyName     string
	Provider    string
	State       string
	SourceURL   string
	FirstSeenAt time.Time
	LastSeenAt  time.Time
	Occurrences int
	NotifiedAt  *time.Time
}

// List returns the most recent incidents, newest first.
func (s *Service) List(ctx context.Context, limit int) ([]Summary, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT i.id, o.name, k.name, k.provider, i.state, i.source_url, i.first_seen_at, i.last_seen_at,
			(SELECT count(*) FROM occurrences oc WHERE oc.incident_id = i.id), i.notified_at
		FROM incidents i JOIN keys k ON k.id = i.key_id JOIN orgs o ON o.id = i.org_id
		ORDER BY i.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Summary, error) {
		var s Summary
		err := r.Scan(&s.ID, &s.OrgName, &s.KeyName, &s.Provider, &s.State, &s.SourceURL, &s.FirstSeenAt, &s.LastSeenAt, &s.Occurrences, &s.NotifiedAt)
		return s, err
	})
}

// AddWorkers registers the incident workers.
func AddWorkers(w *river.Workers, n *Notifier) {
	river.AddWorker(w, n)
}
