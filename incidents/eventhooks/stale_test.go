package eventhooks

import (
	"context"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

func TestKeyStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, "", "") // no encryption key: secrets kept as generated
	pool, store, w := h.pool, h.store, h.w
	sweeper := NewStaleSweeper(w, h.rc, keys.NewStore(pool))

	var orgID int64
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('acme') RETURNING id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO keys (org_id, name, fingerprint, provider, max_age_days, created_at) VALUES
			($1, 'old', 'lw1:old', 'aws', 30, now() - interval '100 days'),
			($1, 'fresh', 'lw1:fresh', 'aws', 30, now() - interval '3 days'),
			($1, 'retired', 'lw1:retired', 'aws', 30, now() - interval '100 days')`, orgID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE keys SET state = 'retired' WHERE name = 'retired'`); err != nil {
		t.Fatal(err)
	}
	stale, onlyOpened := newReceiver(t), newReceiver(t)
	_, secret, err := store.Create(ctx, audit.System, orgID, stale.URL, []string{EventKeyStale})
	if err != nil {
		t.Fatal(err)
	}
	stale.verifier = webhook.Verifier{Secrets: []string{secret}}
	if _, _, err := store.Create(ctx, audit.System, orgID, onlyOpened.URL, []string{EventIncidentOpened}); err != nil {
		t.Fatal(err)
	}

	for range 2 { // a second sweep queues nothing new
		if err := sweeper.Work(ctx, &river.Job[StaleSweepArgs]{JobRow: &rivertype.JobRow{}}); err != nil {
			t.Fatal(err)
		}
	}
	args := queued[StaleArgs](t, pool, "event_webhook_stale")
	if len(args) != 1 {
		t.Fatalf("queued %+v, want one key.stale for the old key", args)
	}
	sw := &staleWorker{w: w, keys: keys.NewStore(pool)}
	for range 2 { // a retried job sends nothing new
		if err := sw.Work(ctx, &river.Job[StaleArgs]{JobRow: &rivertype.JobRow{}, Args: args[0]}); err != nil {
			t.Fatal(err)
		}
	}
	stale.mu.Lock()
	defer stale.mu.Unlock()
	if len(stale.ids) != 1 || len(onlyOpened.got) != 0 {
		t.Fatalf("stale receiver got %d, opened-only receiver %d", len(stale.ids), len(onlyOpened.got))
	}
	if stale.got[0].Type != EventKeyStale {
		t.Fatalf("type %s", stale.got[0].Type)
	}
}
