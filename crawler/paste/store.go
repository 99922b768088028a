package paste

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Item states in paste_items.
const (
	StatusQueued  = "queued"  // listed, fetch job waiting
	StatusScanned = "scanned" // fetched and scanned (or known clean)
	StatusDeleted = "deleted" // gone before we fetched it
	StatusSkipped = "skipped" // malformed; counted, not retried
	StatusFailed  = "failed"  // fetch retries exhausted
)

// Store keeps sources' checkpoints, seen pastes, scanned contents and health
// counters.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a Store.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Register makes sure the source has its row and returns its checkpoint.
func (s *Store) Register(ctx context.Context, src Source) (Checkpoint, error) {
	var cp Checkpoint
	var last *time.Time
	err := s.pool.QueryRow(ctx, `
		INSERT INTO paste_sources (name, kind, poll_interval_s) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, poll_interval_s = EXCLUDED.poll_interval_s
		RETURNING last_key, last_paste_at`,
		src.Name(), src.Kind(), max(1, int(src.Interval()/time.Second))).Scan(&cp.LastKey, &last)
	if err != nil {
		return cp, fmt.Errorf("register paste source %s: %w", src.Name(), err)
	}
	if last != nil {
		cp.LastPasteAt = *last
	}
	return cp, nil
}

// pollFailedTx records a failed listing.
func (s *Store) pollFailed(ctx context.Context, source string, cause error) error {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE paste_sources SET last_poll_at = now(), last_error = $2, last_error_at = now(),
			unauthorised = $3, consecutive_failures = consecutive_failures + 1, updated_at = now()
		WHERE name = $1`, source, msg, errors.Is(cause, ErrUnauthorised))
	if err != nil {
		return fmt.Errorf("record poll failure of %s: %w", source, err)
	}
	return nil
}

// insertNewTx records the listed items and returns those not seen before.
func insertNewTx(ctx context.Context, tx pgx.Tx, source string, items []Item) ([]Item, error) {
	if len(items) == 0 {
		return nil, nil
	}
	keys := make([]string, len(items))
	dates := make([]*time.Time, len(items))
	for i, it := range items {
		keys[i] = it.Key()
		if !it.Date.IsZero() {
			d := it.Date
			dates[i] = &d
		}
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO paste_items (source, key, paste_at)
		SELECT $1, k, d FROM unnest($2::text[], $3::timestamptz[]) AS t(k, d)
		ON CONFLICT (source, key) DO NOTHING
		RETURNING key`, source, keys, dates)
	if err != nil {
		return nil, fmt.Errorf("record listed pastes: %w", err)
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("record listed pastes: %w", err)
	}
	isNew := make(map[string]bool, len(fresh))
	for _, k := range fresh {
		isNew[k] = true
	}
	var out []Item
	for _, it := range items {
		if isNew[it.Key()] {
			out = append(out, it)
			delete(isNew, it.Key()) // a key listed twice is fetched once
		}
	}
	return out, nil
}

// itemRetention is how long finished pastes are remembered for
// deduplication by key; listings never reach back that far.
const itemRetention = 30 * 24 * time.Hour

// pruneTx forgets the source's pastes finished before the retention.
func pruneTx(ctx context.Context, tx pgx.Tx, source string) error {
	_, err := tx.Exec(ctx, `DELETE FROM paste_items WHERE source = $1 AND done_at < now() - make_interval(secs => $2)`,
		source, itemRetention.Seconds())
	if err != nil {
		return fmt.Errorf("prune pastes of %s: %w", source, err)
	}
	return nil
}

// pollSucceededTx advances the checkpoint and the counters of a listing.
func pollSucceededTx(ctx context.Context, tx pgx.Tx, source string, res PollResult, newest Item, newestDate time.Time) error {
	var last *time.Time
	if !newestDate.IsZero() {
		last = &newestDate
	}
	gaps := 0
	if res.Gap {
		gaps = 1
	}
	_, err := tx.Exec(ctx, `
		UPDATE paste_sources SET
			last_key = CASE WHEN $2 = '' THEN last_key ELSE $2 END,
			last_paste_at = GREATEST(last_paste_at, $3),
			last_poll_at = now(), last_success_at = now(), last_error = '',
			unauthorised = false, consecutive_failures = 0,
			listed_total = listed_total + $4,
			skipped_total = skipped_total + $5,
			last_skip_at = CASE WHEN $5 > 0 THEN now() ELSE last_skip_at END,
			gaps_total = gaps_total + $6, gap_estimate_total = gap_estimate_total + $7,
			last_gap_at = CASE WHEN $6 > 0 THEN now() ELSE last_gap_at END,
			updated_at = now()
		WHERE name = $1`, source, newest.Key(), last, res.New, res.Malformed, gaps, res.GapEstimate)
	if err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", source, err)
	}
	return nil
}

// finish records how an item's fetch ended and bumps the source's counters.
func (s *Store) finish(ctx context.Context, source, key, status, detail string, parts, findings int) error {
	if len(detail) > 500 {
		detail = detail[:500]
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			UPDATE paste_items SET status = $3, detail = $4, parts = $5, findings = $6, done_at = now()
			WHERE source = $1 AND key = $2`, source, key, status, detail, parts, findings)
		if err != nil {
			return fmt.Errorf("finish paste %s/%s: %w", source, key, err)
		}
		var q string
		switch status {
		case StatusDeleted:
			q = `UPDATE paste_sources SET deleted_total = deleted_total + 1, updated_at = now() WHERE name = $1`
		case StatusSkipped:
			q = `UPDATE paste_sources SET skipped_total = skipped_total + 1, last_skip_at = now(), updated_at = now() WHERE name = $1`
		default:
			return nil
		}
		if _, err := tx.Exec(ctx, q, source); err != nil {
			return fmt.Errorf("count %s paste of %s: %w", status, source, err)
		}
		return nil
	})
}

// fetchFailed counts a fetch error; unauthorised marks the source so.
func (s *Store) fetchFailed(ctx context.Context, source string, cause error) error {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE paste_sources SET fetch_errors_total = fetch_errors_total + 1, last_fetch_error_at = now(),
			unauthorised = unauthorised OR $2, last_error = $3, last_error_at = now(), updated_at = now()
		WHERE name = $1`, source, errors.Is(cause, ErrUnauthorised), msg)
	if err != nil {
		return fmt.Errorf("count fetch error of %s: %w", source, err)
	}
	return nil
}
