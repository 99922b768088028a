package eventhooks

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

func TestWeeklyDigestWebhook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, "", "")
	pool, store, inc := h.pool, h.store, h.inc
	ds := NewDigestSweeper(h.w, h.rc, inc, keys.NewStore(h.pool))

	var orgID, keyID int64
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('acme') RETURNING id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, 'deploy', 'lw1:test', 'aws') RETURNING id`, orgID).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	if err := inc.Record(ctx, []crawler.Finding{{KeyID: keyID, OrgID: orgID, Fingerprint: "lw1:test", Source: "github", EventID: "1", URL: "https://x/1", DetectedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	digest, everything := newReceiver(t), newReceiver(t)
	_, secret, err := store.Create(ctx, audit.System, orgID, digest.URL, []string{EventDigestWeekly})
	if err != nil {
		t.Fatal(err)
	}
	digest.verifier = webhook.Verifier{Secrets: []string{secret}}
	if _, _, err := store.Create(ctx, audit.System, orgID, everything.URL, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second sweep of the same week queues nothing new
		if err := ds.Work(ctx, &river.Job[DigestSweepArgs]{JobRow: &rivertype.JobRow{}}); err != nil {
			t.Fatal(err)
		}
	}
	args := queued[DigestArgs](t, pool, "event_webhook_digest")
	if len(args) != 1 {
		t.Fatalf("%d digests queued, want 1 (only the subscription that asked)", len(args))
	}
	a := args[0]
	dw := &digestWorker{ds: ds}
	for range 2 {
		if err := dw.Work(ctx, &river.Job[DigestArgs]{JobRow: &rivertype.JobRow{}, Args: a}); err != nil {
			t.Fatal(err)
		}
	}
	digest.mu.Lock()
	defer digest.mu.Unlock()
	if len(digest.ids) != 1 || digest.got[0].Type != EventDigestWeekly {
		t.Fatalf("digest receiver got %d", len(digest.ids))
	}
	var opened string
	if err := pool.QueryRow(ctx, `SELECT payload -> 'data' -> 'stats' ->> 'opened' FROM webhook_deliveries WHERE message_id LIKE 'msg_lwdigest_%'`).Scan(&opened); err != nil || opened != "1" {
		t.Fatalf("digest stats.opened = %q (%v), want 1", opened, err)
	}
}
