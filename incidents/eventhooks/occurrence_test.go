package eventhooks

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

func TestOccurrenceAdded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, "", "")
	pool, store, inc, w := h.pool, h.store, h.inc, h.w
	// Through the fan-out, as serve wires it.
	inc = incidents.NewService(pool, h.rc, slog.New(slog.DiscardHandler), incidents.Config{Notifier: incidents.Notifiers{NewNotifier(h.rc)}})

	var orgID, keyID int64
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('acme') RETURNING id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, 'deploy', 'lw1:test', 'aws') RETURNING id`, orgID).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	recv := newReceiver(t)
	_, secret, err := store.Create(ctx, audit.System, orgID, recv.URL, []string{EventOccurrenceAdded})
	if err != nil {
		t.Fatal(err)
	}
	recv.verifier = webhook.Verifier{Secrets: []string{secret}}
	finding := func(url string) crawler.Finding {
		return crawler.Finding{KeyID: keyID, OrgID: orgID, Fingerprint: "lw1:test", Source: "github", EventID: url, URL: url,
			Repo: "fork/<b>x</b>", DetectedAt: time.Now()}
	}
	// The first sighting opens the incident (incident.opened, not wanted
	// here); the next two are occurrences; a replay is nothing.
	for _, u := range []string{"https://x/1", "https://x/2", "https://x/3", "https://x/3"} {
		if err := inc.Record(ctx, []crawler.Finding{finding(u)}); err != nil {
			t.Fatal(err)
		}
	}
	args := queued[OccurrenceArgs](t, pool, "event_webhook_occurrence")
	if len(args) != 2 {
		t.Fatalf("queued %+v, want two occurrence.added", args)
	}
	ow := &occurrenceWorker{w: w}
	for _, a := range args {
		if err := ow.Work(ctx, &river.Job[OccurrenceArgs]{JobRow: &rivertype.JobRow{}, Args: a}); err != nil {
			t.Fatal(err)
		}
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.got) != 2 || recv.got[0].Type != EventOccurrenceAdded || recv.got[0].Data.Leak.URL != "https://x/2" ||
		recv.got[1].Data.Leak.URL != "https://x/3" || recv.got[0].Data.Leak.Repo != "fork/<b>x</b>" {
		t.Fatalf("received %+v", recv.got)
	}
}
