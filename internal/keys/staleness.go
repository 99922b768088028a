package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The stale-key rule, stated once. A key's rotation policy (p.days) is its
// own maximum age, else its organisation's default; an active key with a
// policy goes stale that many days after its last rotation (or creation).
// selectKeys' stale column, Stale, Digest and StaleAt all use it, so the
// dashboard, the Slack digest and the key.stale webhook agree.
const (
	// policyJoin joins the organisation and computes p.days for k.
	// read-only join: the organisation's default policy decides staleness,
	// which lists filter and count on in the query.
	policyJoin = `JOIN orgs o ON o.id = k.org_id,
		LATERAL (SELECT CASE WHEN k.max_age_days > 0 THEN k.max_age_days ELSE o.default_max_age_days END AS days) p`
	// staleSince is when k goes stale (meaningful when p.days > 0).
	staleSince = `coalesce(k.rotated_at, k.created_at) + make_interval(days => p.days)`
	// staleBefore, followed by a time, says k is stale at that time.
	staleBefore = `p.days > 0 AND k.state = 'active' AND ` + staleSince + ` < `
	// staleNow is the rule at the database's now(), for selectKeys.
	staleNow = staleBefore + `now()`
)

// StaleKey is an active key past its rotation policy.
type StaleKey struct {
	ID, OrgID int64
	// StaleSince is when it went stale, in Unix seconds: it identifies the
	// staleness (rotating the key and letting it age again is a new one).
	StaleSince int64
}

// StaleAt lists every organisation's keys stale at t, by organisation then
// key: what the key.stale webhook sweep sends.
func (s *Store) StaleAt(ctx context.Context, t time.Time) ([]StaleKey, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT k.id, k.org_id, extract(epoch FROM `+staleSince+`)::bigint
		FROM keys k `+policyJoin+`
		WHERE `+staleBefore+`$1
		ORDER BY k.org_id, k.id`, t)
	if err != nil {
		return nil, fmt.Errorf("list stale keys: %w", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StaleKey, error) {
		var k StaleKey
		return k, r.Scan(&k.ID, &k.OrgID, &k.StaleSince)
	})
	if err != nil {
		return nil, fmt.Errorf("list stale keys: %w", err)
	}
	return ks, nil
}

// CountStaleAt counts the organisation's keys stale at t.
func (s *Store) CountStaleAt(ctx context.Context, orgID int64, t time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM keys k `+policyJoin+`
		WHERE k.org_id = $1 AND `+staleBefore+`$2`, orgID, t).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count stale keys of organisation %d: %w", orgID, err)
	}
	return n, nil
}
