package migrations_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/migrations"
)

func TestMigrateIsCurrentAndIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	if err := migrations.Check(ctx, pool); err != nil {
		t.Fatalf("fresh test database not current: %v", err)
	}
	// Applying again changes nothing and fails nothing.
	if err := migrations.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	st, err := migrations.Status(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if m.AppliedAt == nil {
			t.Errorf("migration %s not applied", m.Name)
		}
	}
}

func TestCheckReportsPending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	last := all[len(all)-1]
	if _, err := pool.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, last.Version); err != nil {
		t.Fatal(err)
	}
	err = migrations.Check(ctx, pool)
	if !errors.Is(err, migrations.ErrOutdated) {
		t.Fatalf("Check = %v, want ErrOutdated", err)
	}
}
