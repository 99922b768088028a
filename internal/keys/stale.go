package keys

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Stale returns how many active keys are past their rotation policy and
// the limit oldest of them: what the dashboard's overview shows, without
// loading every key of a large organisation (Digest does).
func (s *Store) Stale(ctx context.Context, orgID int64, limit int) ([]Key, int, error) {
	var total int
	q := `SELECT * FROM (` + selectKeys + ` WHERE k.org_id = $1 AND k.state = 'active') x WHERE x.stale`
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (`+q+`) c`, orgID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count stale keys of organisation %d: %w", orgID, err)
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY x.age_days DESC, x.id LIMIT $2`, orgID, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("list stale keys of organisation %d: %w", orgID, err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return scanKey(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("list stale keys of organisation %d: %w", orgID, err)
	}
	return ks, total, nil
}
