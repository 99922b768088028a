package orgs_test

import (
	"context"
	"testing"

	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestNames: one query names every organisation of a list; deleted ones
// are absent.
func TestNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	store := orgs.NewStore(pool)
	a, _, err := store.Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := store.Create(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	names, err := orgs.Names(ctx, pool, []int64{a.ID, b.ID, b.ID + 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names[a.ID] != "acme" || names[b.ID] != "globex" {
		t.Fatalf("Names = %v", names)
	}
	if names, err := orgs.Names(ctx, pool, nil); err != nil || len(names) != 0 {
		t.Fatalf("Names(nil) = %v, %v", names, err)
	}
}
