package keys_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestReadModel: the functions other packages read keys through see a
// caller's transaction, say ErrNotFound for a missing key, and follow the
// key-set version.
func TestReadModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	org, _, err := orgs.NewStore(pool).Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	revURL := "https://revoke.acme.example/default"
	if _, err := orgs.NewStore(pool).Update(ctx, org.ID, orgs.Update{DefaultRevocationURL: &revURL}); err != nil {
		t.Fatal(err)
	}
	store := keys.NewStore(pool)
	v0, err := keys.KeysetVersion(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	a, err := store.Register(ctx, org.ID, keys.Params{Name: "deploy", Fingerprint: mustFP(t, "ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3Mf6Jp0Ks2Ea9T"), Environment: "staging"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.Register(ctx, org.ID, keys.Params{Name: "ci", Fingerprint: mustFP(t, "ghp_Q2wE9rT5yU1iO7pA3sD8fG4hJ6kL0zX2cV5b")})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := keys.KeysetVersion(ctx, pool); err != nil || v <= v0 {
		t.Fatalf("version after registering = %d, %v; before %d", v, err, v0)
	}

	got, err := keys.Get(ctx, pool, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.OrgID != org.ID || got.Name != "deploy" || got.Environment != "staging" || got.Fingerprint != a.Fingerprint ||
		got.EffectiveRevocationURL != revURL {
		t.Fatalf("Get = %+v", got)
	}
	if _, err := keys.Get(ctx, pool, b.ID+1000); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}

	m, err := keys.ByIDs(ctx, pool, []int64{a.ID, b.ID, b.ID + 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[a.ID].Name != "deploy" || m[b.ID].Name != "ci" {
		t.Fatalf("ByIDs = %+v", m)
	}
	if m, err := keys.ByIDs(ctx, pool, nil); err != nil || len(m) != 0 {
		t.Fatalf("ByIDs(nil) = %v, %v", m, err)
	}

	// Inside a transaction, Get sees what the transaction did.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE keys SET name = 'renamed' WHERE id = $1`, a.ID); err != nil {
			return err
		}
		k, err := keys.Get(ctx, tx, a.ID)
		if err != nil {
			return err
		}
		if k.Name != "renamed" {
			t.Errorf("Get in the transaction = %q", k.Name)
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatal(err)
	}
}
