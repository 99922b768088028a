package crawler_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/matcher"
)

// TestRotatedSecretSeenAgain runs a sighting of a secret its key was
// rotated away from through the real registry, pipeline, incidents and
// Slack notifier: it is recorded on the key's last incident as seen after
// rotation, with no Slack job, no new incident and no phase change; once
// the retention has passed it is no longer matched at all.
func TestRotatedSecretSeenAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc, err := jobs.NewClient(pool, jobs.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	svc := incidents.NewService(pool, rc, logger, incidents.Config{Notifier: slack.NewNotifier(rc)})
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	store := keys.NewStore(pool).OnRotateTx(svc.KeyRotatedTx)
	oldSecret := "ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3Mf6Jp0Ks2Ea9T"
	newSecret := "ghp_Q2wE9rT5yU1iO7pA3sD8fG4hJ6kL0zX2cV5b"
	fp := func(s string) matcher.Fingerprint {
		f, err := matcher.Compute([]byte(s), matcher.ComputeOpts{})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	k, err := store.Register(ctx, audit.System, org.ID, keys.Params{Name: "deploy", Fingerprint: fp(oldSecret)})
	if err != nil {
		t.Fatal(err)
	}
	reg := keys.NewRegistry(pool, logger).WithRotatedRetention(time.Hour)
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	p := crawler.NewPipeline(reg, svc, nil)
	seen := func(n int, secret string) int {
		t.Helper()
		found, err := p.Process(ctx, []crawler.Document{{Source: "gist", EventID: "gist-" + strconv.Itoa(n), URL: "https://gist.github.com/x/" + strconv.Itoa(n),
			Text: []byte("TOKEN=" + secret + "\n")}})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	slackJobs := func() int { return count(`SELECT count(*) FROM river_job WHERE kind = 'slack_sync'`) }
	phase := func() string {
		t.Helper()
		var ph string
		if err := pool.QueryRow(ctx, `SELECT phase FROM incidents WHERE key_id = $1 ORDER BY id DESC LIMIT 1`, k.ID).Scan(&ph); err != nil {
			t.Fatal(err)
		}
		return ph
	}

	if n := seen(1, oldSecret); n != 1 {
		t.Fatalf("first leak: %d findings", n)
	}
	if slackJobs() == 0 {
		t.Fatal("the leak queued no Slack alert: the notifier is not wired")
	}
	if _, err := store.Rotate(ctx, audit.System, org.ID, k.ID, fp(newSecret)); err != nil {
		t.Fatal(err)
	}
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if ph := phase(); ph != "eradicated" {
		t.Fatalf("after rotation the incident is %s", ph)
	}

	// The old secret again, on the open (eradicated) incident, then on the
	// closed one.
	for i, close := range []bool{false, true} {
		if close {
			if _, err := pool.Exec(ctx, `UPDATE incidents SET phase = 'closed', closed_at = now() WHERE key_id = $1`, k.ID); err != nil {
				t.Fatal(err)
			}
		}
		before, wantPhase := slackJobs(), phase()
		if n := seen(2+i, oldSecret); n != 1 {
			t.Fatalf("old secret within retention: %d findings, want 1", n)
		}
		if got := slackJobs(); got != before {
			t.Fatalf("Slack jobs %d → %d: the dead secret alerted", before, got)
		}
		if ph := phase(); ph != wantPhase {
			t.Fatalf("phase %s → %s", wantPhase, ph)
		}
		if n := count(`SELECT count(*) FROM incidents WHERE key_id = $1`, k.ID); n != 1 {
			t.Fatalf("incidents = %d", n)
		}
		if n := count(`SELECT count(*) FROM occurrences WHERE key_id = $1 AND after_rotation`, k.ID); n != i+1 {
			t.Fatalf("occurrences flagged after rotation = %d, want %d", n, i+1)
		}
		if n := count(`SELECT count(*) FROM incident_events WHERE kind = 'seen_after_rotation'`); n != i+1 {
			t.Fatalf("seen_after_rotation entries = %d, want %d", n, i+1)
		}
	}
	details, err := svc.Get(ctx, org.ID, mustIncident(t, count, k.ID))
	if err != nil {
		t.Fatal(err)
	}
	if len(details.OccurrenceList) != 3 || details.OccurrenceList[0].AfterRotation || !details.OccurrenceList[2].AfterRotation {
		t.Fatalf("occurrences as read: %+v", details.OccurrenceList)
	}

	// Past the retention, the old secret is no longer matched.
	if _, err := pool.Exec(ctx, `UPDATE key_fingerprints SET replaced_at = now() - interval '2 hours' WHERE key_id = $1 AND replaced_at IS NOT NULL`, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if n := seen(9, oldSecret); n != 0 {
		t.Fatalf("old secret past retention: %d findings, want 0", n)
	}
	if n := seen(10, newSecret); n != 1 {
		t.Fatalf("current secret: %d findings, want 1", n)
	}
}

func mustIncident(t *testing.T, count func(string, ...any) int, keyID int64) int64 {
	t.Helper()
	return int64(count(`SELECT max(id)::int FROM incidents WHERE key_id = $1`, keyID))
}
