package keys_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestAuditedInTheSameTransaction: the store writes each change
// and its audit entry together, so a change whose entry cannot be written
// does not happen.
func TestAuditedInTheSameTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	store := keys.NewStore(pool)
	alice := audit.Actor{Name: "alice@example.com", UserID: 7, IP: "192.0.2.1", UserAgent: "test"}
	k, err := store.Register(ctx, alice, org.ID, keys.Params{Name: "deploy", Fingerprint: mustFP(t, "ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3Mf6Jp0Ks2Ea9T")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Rotate(ctx, alice, org.ID, k.ID, mustFP(t, "ghp_Q2wE9rT5yU1iO7pA3sD8fG4hJ6kL0zX2cV5b")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetState(ctx, alice, org.ID, k.ID, keys.StateRetired); err != nil {
		t.Fatal(err)
	}
	entries, err := audit.NewStore(pool).List(ctx, org.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if e.Action == "org.create" {
			continue // the fixture's
		}
		actions = append(actions, e.Action)
		if e.Actor != "alice@example.com" || e.IP != "192.0.2.1" || e.ObjectID != itoa(k.ID) || e.OrgID != org.ID {
			t.Errorf("entry %+v", e)
		}
	}
	if len(actions) != 3 || actions[0] != "key.retired" || actions[1] != "key.rotate" || actions[2] != "key.create" {
		t.Fatalf("actions %v", actions)
	}

	// Make audit writes fail: the change must roll back with them.
	if _, err := pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Register(ctx, alice, org.ID, keys.Params{Name: "other", Fingerprint: mustFP(t, "ghp_Zq8Wm3Xr7Tn2Vb5Kc9Hd4Lf0Pq6Ys1Ue3Rk8")}); err == nil {
		t.Fatal("Register succeeded without its audit entry")
	}
	if _, err := store.SetState(ctx, alice, org.ID, k.ID, keys.StateActive); err == nil {
		t.Fatal("SetState succeeded without its audit entry")
	}
	ks, err := keys.NewStore(pool).List(ctx, org.ID, keys.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 1 || ks[0].State != keys.StateRetired {
		t.Fatalf("keys after failed audited changes: %+v", ks)
	}
	// Without an actor, the change is refused.
	if _, err := store.SetState(ctx, audit.Actor{}, org.ID, k.ID, keys.StateActive); !errors.Is(err, audit.ErrNoActor) {
		t.Fatalf("SetState without an actor: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestRotateRetiredRefused: rotating a retired key used to reactivate it
// silently; it is refused until the key is reactivated.
func TestRotateRetiredRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	store := keys.NewStore(pool)
	k, err := store.Register(ctx, audit.System, org.ID, keys.Params{Name: "deploy", Fingerprint: mustFP(t, "ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3Mf6Jp0Ks2Ea9T")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetState(ctx, audit.System, org.ID, k.ID, keys.StateRetired); err != nil {
		t.Fatal(err)
	}
	next := mustFP(t, "ghp_Q2wE9rT5yU1iO7pA3sD8fG4hJ6kL0zX2cV5b")
	if _, err := store.Rotate(ctx, audit.System, org.ID, k.ID, next); !errors.Is(err, keys.ErrRetired) {
		t.Fatalf("rotating a retired key: %v, want ErrRetired", err)
	}
	if got, _ := store.Key(ctx, org.ID, k.ID); got.State != keys.StateRetired || got.Fingerprint != k.Fingerprint {
		t.Fatalf("after the refused rotation: %+v", got)
	}
	if _, err := store.SetState(ctx, audit.System, org.ID, k.ID, keys.StateRevoked); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Rotate(ctx, audit.System, org.ID, k.ID, next); err != nil || got.State != keys.StateActive {
		t.Fatalf("rotating a revoked key: %+v %v", got, err)
	}
}
