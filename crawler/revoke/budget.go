package revoke

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Budget meters a provider's calls: Take reserves one call, or says the
// budget is spent; Park records that the provider refused until a time.
type Budget interface {
	Take(ctx context.Context, now time.Time) (bool, error)
	Park(ctx context.Context, until time.Time) error
}

// memoryBudget is one process's view of the budget (tests, and revokers
// built without a database).
type memoryBudget struct {
	limit  int
	mu     sync.Mutex
	calls  []time.Time // within the last hour
	parked time.Time
}

func (b *memoryBudget) Take(_ context.Context, now time.Time) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.parked) {
		return false, nil
	}
	kept := b.calls[:0]
	for _, t := range b.calls {
		if now.Sub(t) < time.Hour {
			kept = append(kept, t)
		}
	}
	b.calls = kept
	if len(b.calls) >= b.limit {
		return false, nil
	}
	b.calls = append(b.calls, now)
	return true, nil
}

func (b *memoryBudget) Park(_ context.Context, until time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.parked = until
	return nil
}

// PGBudget is a budget of limit calls an hour shared through PostgreSQL by
// every process of a deployment (tables revoker_calls and revoker_parked).
type PGBudget struct {
	pool  *pgxpool.Pool
	name  string
	limit int
}

// NewPGBudget returns the shared budget of the revoker called name.
func NewPGBudget(pool *pgxpool.Pool, name string, limit int) *PGBudget {
	return &PGBudget{pool: pool, name: name, limit: limit}
}

// Take reserves one call if fewer than limit were made in the hour before
// now and the provider has not parked the revoker. Takes are serialised by
// an advisory lock, so concurrent processes never overspend.
func (b *PGBudget) Take(ctx context.Context, now time.Time) (bool, error) {
	ok := false
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('leakwatch.revoker.' || $1, 0))`, b.name); err != nil {
			return err
		}
		var parked bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoker_parked WHERE revoker = $1 AND parked_until > $2)`, b.name, now).Scan(&parked); err != nil {
			return err
		}
		if parked {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM revoker_calls WHERE revoker = $1 AND at <= $2`, b.name, now.Add(-time.Hour)); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM revoker_calls WHERE revoker = $1`, b.name).Scan(&n); err != nil {
			return err
		}
		if n >= b.limit {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO revoker_calls (revoker, at) VALUES ($1, $2)`, b.name, now); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("take a %s call from the shared budget: %w", b.name, err)
	}
	return ok, nil
}

// Park stops every process's calls until until.
func (b *PGBudget) Park(ctx context.Context, until time.Time) error {
	_, err := b.pool.Exec(ctx, `
		INSERT INTO revoker_parked (revoker, parked_until) VALUES ($1, $2)
		ON CONFLICT (revoker) DO UPDATE SET parked_until = GREATEST(revoker_parked.parked_until, EXCLUDED.parked_until)`, b.name, until)
	if err != nil {
		return fmt.Errorf("park %s: %w", b.name, err)
	}
	return nil
}
