package orgs_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
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

// TestSlackWebhookSealedAndResealed: the URL is stored in plaintext without
// a key, sealed by the reseal once a key is configured, and reads back the
// same through SlackWebhook either way.
func TestSlackWebhookSealedAndResealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	const hook = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"
	plain := orgs.NewStore(pool)
	org, _, err := plain.Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := plain.Create(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.SetSlackWebhook(ctx, org.ID, hook); err != nil {
		t.Fatal(err)
	}
	stored := func() string {
		var s string
		if err := pool.QueryRow(ctx, `SELECT slack_webhook_url FROM orgs WHERE id = $1`, org.ID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if stored() != hook {
		t.Fatalf("stored without a key: %q", stored())
	}

	box, err := secretbox.Parse("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	var changed []int64
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		changed, err = orgs.ResealSlackWebhooksTx(ctx, tx, box)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []int64{org.ID}) {
		t.Fatalf("resealed %v, want only %d (%d has no webhook)", changed, org.ID, other.ID)
	}
	if s := stored(); !secretbox.Sealed(s) || strings.Contains(s, "hooks.slack.com") {
		t.Fatalf("not sealed after reseal: %q", s)
	}
	sealed := orgs.NewStore(pool).WithBox(box)
	if got, err := sealed.SlackWebhook(ctx, org.ID); err != nil || got != hook {
		t.Fatalf("SlackWebhook = %q, %v", got, err)
	}
	if got, err := sealed.SlackWebhook(ctx, other.ID); err != nil || got != "" {
		t.Fatalf("SlackWebhook without one = %q, %v", got, err)
	}
	if _, err := sealed.SlackWebhook(ctx, other.ID+1000); !errors.Is(err, orgs.ErrNotFound) {
		t.Fatalf("SlackWebhook of a missing organisation: %v", err)
	}
	// A second reseal under the same key changes nothing.
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		changed, err = orgs.ResealSlackWebhooksTx(ctx, tx, box)
		return err
	}); err != nil || len(changed) != 0 {
		t.Fatalf("second reseal changed %v, %v", changed, err)
	}
}
