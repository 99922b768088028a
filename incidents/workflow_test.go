package incidents

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/incidents/revoketest"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
	"github.com/leakwatch/leakwatch/matcher"
)

// fakeClock is an injectable clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var loopback = webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

type revokeBundle struct {
	testBundle
	clock    *fakeClock
	key      webhook.SigningKey
	receiver *revoketest.Server
	revoker  *RevocationWorker
}

// setupRevoke adds a fake clock, a reference receiver configured as the
// key's endpoint (HMAC and Ed25519), and the revocation worker.
func setupRevoke(t *testing.T) revokeBundle {
	t.Helper()
	ctx := context.Background()
	b := setup(t)
	clock := newFakeClock()
	b.svc.now = clock.Now
	key, err := webhook.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	recv := revoketest.NewServer(nil, []ed25519.PublicKey{key.Public()}, clock.Now)
	t.Cleanup(recv.Close)
	secret, err := b.svc.SetRevocationEndpoint(ctx, audit.System, b.orgID, b.keyID, recv.URL+"/revoke", true)
	if err != nil {
		t.Fatal(err)
	}
	recv.AddSecret(secret)
	sender := webhook.NewSender(webhook.NewHTTPClient(loopback, 5*time.Second), loopback, &key, clock.Now)
	return revokeBundle{testBundle: b, clock: clock, key: key, receiver: recv, revoker: NewRevocationWorker(b.svc, sender, b.logger)}
}

func (b revokeBundle) incident(t *testing.T) (id int64, phase Phase, containment string) {
	t.Helper()
	if err := b.pool.QueryRow(context.Background(), `SELECT id, phase, containment FROM incidents ORDER BY id DESC LIMIT 1`).Scan(&id, &phase, &containment); err != nil {
		t.Fatal(err)
	}
	return id, phase, containment
}

// work runs the revocation job once, as River would, and returns the snooze
// asked for (0 when the job finished).
func (b revokeBundle) work(t *testing.T, args RevokeArgs) time.Duration {
	t.Helper()
	err := b.revoker.Work(context.Background(), &river.Job[RevokeArgs]{JobRow: &rivertype.JobRow{Attempt: 1}, Args: args})
	var snooze *rivertype.JobSnoozeError
	if errors.As(err, &snooze) {
		return snooze.Duration
	}
	if err != nil {
		t.Fatalf("revoke job: %v", err)
	}
	return 0
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("opening queues the request; revoked answer contains", func(t *testing.T) {
		t.Parallel()
		b := setupRevoke(t)
		if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://github.com/o/r/blob/x/a.env#L3", 3)}); err != nil {
			t.Fatal(err)
		}
		job := rivertest.RequireInserted(ctx, t, riverpgxv5.New(b.pool), &RevokeArgs{}, nil)
		id, phase, containment := b.incident(t)
		if job.Args.IncidentID != id || phase != PhaseIdentified || containment != "requested" {
			t.Fatalf("job %+v, incident %d %s %s", job.Args, id, phase, containment)
		}
		if d := b.work(t, *job.Args); d != 0 {
			t.Fatalf("snoozed %v", d)
		}
		if _, phase, containment = b.incident(t); phase != PhaseContained || containment != "contained" {
			t.Fatalf("phase %s containment %s", phase, containment)
		}
		reqs := b.receiver.Requests()
		if len(reqs) != 1 || !reqs[0].Verified {
			t.Fatalf("receiver got %+v", reqs)
		}
		// Both signature kinds are present and each verifies on its own.
		sig := reqs[0].Header.Get(webhook.HeaderSignature)
		if !strings.Contains(sig, "v1,") || !strings.Contains(sig, "v1a,") {
			t.Fatalf("signature header %q", sig)
		}
		onlyEd := webhook.Verifier{PublicKeys: []ed25519.PublicKey{b.key.Public()}, Now: b.clock.Now}
		if err := onlyEd.Verify(reqs[0].Header, reqs[0].Body); err != nil {
			t.Fatalf("Ed25519 alone: %v", err)
		}
		var body map[string]any
		if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
			t.Fatal(err)
		}
		key := body["key"].(map[string]any)
		if body["event_id"] != reqs[0].ID || body["leak_url"] != "https://github.com/o/r/blob/x/a.env#L3" || key["name"] != "aws prod" || key["fingerprint"] != "lw1:test" {
			t.Fatalf("request body %s", reqs[0].Body)
		}
		// Running the job again (a retry after a crash) sends nothing more.
		b.work(t, *job.Args)
		if n := len(b.receiver.Requests()); n != 1 {
			t.Fatalf("requests after rerun = %d", n)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incident_events WHERE to_phase = 'contained'`); n != 1 {
			t.Fatalf("contained transitions = %d", n)
		}
	})

	t.Run("endpoint down for an hour: retried with the same id, then exactly one containment", func(t *testing.T) {
		t.Parallel()
		b := setupRevoke(t)
		start := b.clock.Now()
		b.receiver.SetAnswer(func(revoketest.Request) (int, string) {
			if b.clock.Now().Sub(start) < time.Hour {
				return http.StatusServiceUnavailable, "down for maintenance"
			}
			return http.StatusOK, `{"status":"revoked"}`
		})
		if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
			t.Fatal(err)
		}
		id, _, _ := b.incident(t)
		args := RevokeArgs{IncidentID: id}
		var waits []time.Duration
		for range 50 {
			d := b.work(t, args)
			if d == 0 {
				break
			}
			waits = append(waits, d)
			b.clock.Advance(d)
		}
		if _, phase, _ := b.incident(t); phase != PhaseContained {
			t.Fatalf("phase %s after %d retries", phase, len(waits))
		}
		t.Logf("endpoint down for an hour: contained after %d retries, waits %v", len(waits), waits)
		if len(waits) < 5 {
			t.Fatalf("only %d retries in an hour: %v", len(waits), waits)
		}
		for i := 1; i < len(waits); i++ {
			if waits[i] < waits[i-1]/2 {
				t.Fatalf("backoff shrank: %v", waits)
			}
		}
		reqs := b.receiver.Requests()
		for _, r := range reqs {
			if r.ID != reqs[0].ID || !r.Verified {
				t.Fatalf("request %+v differs from the first (%s)", r, reqs[0].ID)
			}
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incident_events WHERE to_phase = 'contained'`); n != 1 {
			t.Fatalf("contained transitions = %d", n)
		}
		var attempts, logged int
		var status string
		if err := b.pool.QueryRow(ctx, `SELECT attempts, status, (SELECT count(*) FROM webhook_attempts) FROM webhook_deliveries`).Scan(&attempts, &status, &logged); err != nil {
			t.Fatal(err)
		}
		if attempts != len(reqs) || logged != len(reqs) || status != webhook.StatusSucceeded {
			t.Fatalf("delivery attempts %d logged %d status %s, requests %d", attempts, logged, status, len(reqs))
		}
		var excerpt string
		if err := b.pool.QueryRow(ctx, `SELECT response FROM webhook_attempts ORDER BY id LIMIT 1`).Scan(&excerpt); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(excerpt, "down for maintenance") {
			t.Fatalf("first attempt's excerpt %q", excerpt)
		}
	})

	t.Run("down for 24 hours: containment failed and escalated", func(t *testing.T) {
		t.Parallel()
		b := setupRevoke(t)
		b.receiver.SetAnswer(func(revoketest.Request) (int, string) { return http.StatusBadGateway, "" })
		if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
			t.Fatal(err)
		}
		id, _, _ := b.incident(t)
		for range 200 {
			d := b.work(t, RevokeArgs{IncidentID: id})
			if d == 0 {
				break
			}
			b.clock.Advance(d)
		}
		_, phase, containment := b.incident(t)
		if phase != PhaseIdentified || containment != "failed" {
			t.Fatalf("phase %s containment %s", phase, containment)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incident_events WHERE kind = 'containment_failed'`); n != 1 {
			t.Fatalf("containment_failed entries = %d", n)
		}
		if n := b.heardCount("escalated", "containment_failed"); n != 1 {
			t.Fatalf("escalation notifications = %d", n)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incidents WHERE escalated_at IS NOT NULL`); n != 1 {
			t.Fatal("incident not flagged escalated")
		}
	})

	t.Run("manual and failed answers", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct{ answer, containment, kind string }{
			{`{"status":"manual"}`, "manual", "containment_manual"},
			{`{"status":"failed","reason":"key not found"}`, "failed", "containment_failed"},
		} {
			b := setupRevoke(t)
			b.receiver.SetAnswer(func(revoketest.Request) (int, string) { return http.StatusOK, tt.answer })
			if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
				t.Fatal(err)
			}
			id, _, _ := b.incident(t)
			if d := b.work(t, RevokeArgs{IncidentID: id}); d != 0 {
				t.Fatalf("%s: snoozed", tt.answer)
			}
			_, phase, containment := b.incident(t)
			if phase != PhaseIdentified || containment != tt.containment {
				t.Fatalf("%s: phase %s containment %s", tt.answer, phase, containment)
			}
			if n := count(t, b.pool, `SELECT count(*) FROM incident_events WHERE kind = '`+tt.kind+`'`); n != 1 {
				t.Fatalf("%s: %s entries = %d", tt.answer, tt.kind, n)
			}
			// A human then marks it contained.
			if err := b.svc.MarkContained(ctx, id, Actor{Name: "alice@example.com", OrgID: b.orgID}, "rotated in the console"); err != nil {
				t.Fatal(err)
			}
			if _, phase, _ := b.incident(t); phase != PhaseContained {
				t.Fatalf("after mark contained: %s", phase)
			}
		}
	})

	t.Run("receiver rejects tampered bodies and stale timestamps", func(t *testing.T) {
		t.Parallel()
		b := setupRevoke(t)
		body := []byte(`{"type":"revocation.requested","event_id":"msg_1"}`)
		post := func(h http.Header, body []byte) int {
			req, _ := http.NewRequest(http.MethodPost, b.receiver.URL, strings.NewReader(string(body)))
			req.Header = h
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			return resp.StatusCode
		}
		sign := func(at time.Time) http.Header {
			sig, err := webhook.Sign("msg_1", at, body, "", &b.key)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			h.Set(webhook.HeaderID, "msg_1")
			h.Set(webhook.HeaderTimestamp, itoa(at.Unix()))
			h.Set(webhook.HeaderSignature, sig)
			return h
		}
		now := b.clock.Now()
		if c := post(sign(now), []byte(strings.Replace(string(body), "msg_1", "msg_2", 1))); c != http.StatusUnauthorized {
			t.Fatalf("tampered body: %d", c)
		}
		if c := post(sign(now.Add(-6*time.Minute)), body); c != http.StatusUnauthorized {
			t.Fatalf("stale timestamp: %d", c)
		}
		if c := post(sign(now), body); c != http.StatusOK {
			t.Fatalf("genuine: %d", c)
		}
	})

	t.Run("private endpoint refused without the allowlist", func(t *testing.T) {
		t.Parallel()
		b := setupRevoke(t)
		b.revoker.sender = webhook.NewSender(webhook.NewHTTPClient(webhook.Guard{}, 5*time.Second), webhook.Guard{}, &b.key, b.clock.Now)
		if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
			t.Fatal(err)
		}
		id, _, _ := b.incident(t)
		if d := b.work(t, RevokeArgs{IncidentID: id}); d != 0 {
			t.Fatal("a refused address is not worth retrying")
		}
		if n := len(b.receiver.Requests()); n != 0 {
			t.Fatalf("receiver reached %d times", n)
		}
		if _, _, containment := b.incident(t); containment != "failed" {
			t.Fatalf("containment %s", containment)
		}
		var errText string
		if err := b.pool.QueryRow(ctx, `SELECT error FROM webhook_attempts`).Scan(&errText); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errText, "not allowed") || strings.Contains(errText, "127.0.0.1") {
			t.Fatalf("logged error %q", errText)
		}
	})

	t.Run("revoke now sends a new message", func(t *testing.T) {
		t.Parallel()
		b := setupRevoke(t)
		b.receiver.SetAnswer(func(revoketest.Request) (int, string) { return http.StatusOK, `{"status":"failed","reason":"busy"}` })
		if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
			t.Fatal(err)
		}
		id, _, _ := b.incident(t)
		b.work(t, RevokeArgs{IncidentID: id})
		b.receiver.SetAnswer(revoketest.Revoked)
		if err := b.svc.RevokeNow(ctx, id, Actor{Name: "alice@example.com", OrgID: b.orgID}); err != nil {
			t.Fatal(err)
		}
		var args RevokeArgs
		if err := b.pool.QueryRow(ctx, `SELECT args FROM river_job WHERE kind = 'incident_revoke' ORDER BY id DESC LIMIT 1`).Scan(&args); err != nil {
			t.Fatal(err)
		}
		if args.Manual == 0 {
			t.Fatalf("manual job args %+v", args)
		}
		b.work(t, args)
		reqs := b.receiver.Requests()
		if len(reqs) != 2 || reqs[0].ID == reqs[1].ID {
			t.Fatalf("requests %d, ids %v", len(reqs), reqs)
		}
		if _, phase, _ := b.incident(t); phase != PhaseContained {
			t.Fatalf("phase %s", phase)
		}
		if err := b.svc.RevokeNow(ctx, id, Actor{Name: "alice@example.com", OrgID: b.orgID}); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("revoke now when contained: %v", err)
		}
		if err := b.svc.RevokeNow(ctx, id, Actor{Name: "mallory", OrgID: b.orgID + 1000}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoke now from another org: %v", err)
		}
	})
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestLifecycle runs the whole workflow through a real River client on the
// real database: finding → incident → alert and revocation request →
// contained → rotation → eradicated → recovery → closed with review; then a
// dead secret (no alert) and a regression (reopened, alerted, asked again).
func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	key, err := webhook.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	recv := revoketest.NewServer(nil, []ed25519.PublicKey{key.Public()}, nil)
	t.Cleanup(recv.Close)
	if _, err := b.svc.SetRevocationEndpoint(ctx, audit.System, b.orgID, 0, recv.URL+"/revoke", false); err != nil {
		t.Fatal(err)
	}
	// The alerts: what the timeline notifier hears of the entries that used
	// to be posted (the rendering itself is incidents/slack's).
	rec := &timelineRecorder{}
	alertKinds := map[string]bool{"opened": true, "regression": true, "escalated": true, "containment_failed": true,
		"containment_manual": true, "reminder": true}
	alerts := func() []string {
		var out []string
		for _, h := range rec.all() {
			if _, kind, _ := strings.Cut(h, ":"); alertKinds[kind] {
				out = append(out, kind)
			}
		}
		return out
	}
	posts := func() int { return len(alerts()) }

	// As serve wires it (River's way out of the client/worker loop): the
	// Service inserts through an insert-only client, its workers are in the
	// bundle before the working client is built.
	inserter, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger})
	if err != nil {
		t.Fatal(err)
	}
	svc := NewService(b.pool, inserter, b.logger, Config{Notifier: rec})
	workers := river.NewWorkers()
	sender := webhook.NewSender(webhook.NewHTTPClient(loopback, 5*time.Second), loopback, &key, nil)
	AddWorkers(workers, NewRevocationWorker(svc, sender, b.logger), NewSweeper(svc))
	rc, err := jobs.NewClient(b.pool, jobs.Config{
		Incidents: 2, Notify: 2, Workers: workers, Logger: b.logger, TestOnly: true,
		PeriodicJobs: PeriodicJobs(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rc.Stop(sctx) //nolint:errcheck
	})
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	phase := func() Phase {
		var p Phase
		if err := b.pool.QueryRow(ctx, `SELECT phase FROM incidents ORDER BY id DESC LIMIT 1`).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	actor := Actor{Name: "alice@example.com", UserID: 7, OrgID: b.orgID}

	// Two sightings of the key: one incident, one alert, one request.
	if err := svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1), b.finding("https://x/2", 2)}); err != nil {
		t.Fatal(err)
	}
	waitFor("containment", func() bool { return phase() == PhaseContained })
	// The SLA sweep is a periodic job the leader enqueues (on start, then
	// every minute).
	waitFor("the periodic SLA sweep", func() bool {
		var n int
		_ = b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'incident_sla_sweep' AND state = 'completed'`).Scan(&n)
		return n >= 1
	})
	waitFor("the alert", func() bool { return posts() == 1 })
	var id int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if err := svc.Acknowledge(ctx, id, actor); err != nil {
		t.Fatal(err)
	}
	if err := svc.Assign(ctx, id, 7, actor); err != nil {
		t.Fatal(err)
	}

	// The registry rotates the key (a new fingerprint) and tells incidents
	// in the same transaction.
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE keys SET fingerprint = 'lw1:new' WHERE id = $1`, b.keyID); err != nil {
		t.Fatal(err)
	}
	if err := svc.KeyRotatedTx(ctx, tx, b.keyID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if p := phase(); p != PhaseEradicated {
		t.Fatalf("after rotation: %s", p)
	}
	if err := svc.Close(ctx, id, actor, Review{RootCause: "x"}); !errors.Is(err, ErrReviewRequired) {
		t.Fatalf("close without review: %v", err)
	}
	if err := svc.Close(ctx, id, actor, Review{RootCause: "a", LeakVector: "b", FollowUps: "c"}); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("close before recovery: %v", err)
	}
	if err := svc.ConfirmRecovery(ctx, id, actor, "deployed"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(ctx, id, actor, Review{RootCause: ".env committed", LeakVector: "public repo push", FollowUps: "pre-commit hook"}); err != nil {
		t.Fatal(err)
	}
	if p := phase(); p != PhaseClosed {
		t.Fatalf("after close: %s", p)
	}

	// The old secret again: dead, recorded, nobody alerted.
	if err := svc.Record(ctx, []crawler.Finding{b.finding("https://x/3", 3)}); err != nil {
		t.Fatal(err)
	}
	if p := phase(); p != PhaseClosed {
		t.Fatalf("dead secret reopened the incident: %s", p)
	}
	// The new secret leaks: a regression of the same incident.
	f := b.finding("https://x/4", 4)
	f.Fingerprint = "lw1:new"
	if err := svc.Record(ctx, []crawler.Finding{f}); err != nil {
		t.Fatal(err)
	}
	waitFor("containment of the regression", func() bool { return phase() == PhaseContained })
	waitFor("the regression alert", func() bool { return posts() == 2 })
	if n := count(t, b.pool, `SELECT count(*) FROM incidents`); n != 1 {
		t.Fatalf("incidents = %d", n)
	}
	if n := len(recv.Requests()); n != 2 {
		t.Fatalf("revocation requests = %d, want 2", n)
	}
	rows, err := b.pool.Query(ctx, `SELECT kind || ':' || to_phase FROM incident_events WHERE incident_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, k)
	}
	want := "opened:identified revoked:contained acknowledged: assigned: rotated:eradicated transition:recovered closed:closed seen_after_rotation: regression:identified revoked:contained"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("timeline\n got %s\nwant %s", got, want)
	}
	if got := alerts(); len(got) != 2 || got[1] != "regression" {
		t.Fatalf("alerts %v, want the opening then the regression", got)
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	clock := newFakeClock()
	b.svc.now = clock.Now
	if _, err := b.pool.Exec(ctx, `INSERT INTO incident_settings (org_id, ack_critical_s, ack_high_s, ack_medium_s, ack_low_s, phase_limit_s)
		VALUES ($1, 900, 900, 900, 900, 7200)`, b.orgID); err != nil {
		t.Fatal(err)
	}
	var key2 int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, 'other', 'lw1:other', 'aws') RETURNING id`, b.orgID).Scan(&key2); err != nil {
		t.Fatal(err)
	}
	f2 := b.finding("https://x/2", 2)
	f2.KeyID, f2.Fingerprint = key2, "lw1:other"
	if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1), f2}); err != nil {
		t.Fatal(err)
	}
	var acked int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents WHERE key_id = $1`, key2).Scan(&acked); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.Acknowledge(ctx, acked, System); err != nil {
		t.Fatal(err)
	}

	sweep := func(wantEsc, wantRem int) {
		t.Helper()
		esc, rem, err := b.svc.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if esc != wantEsc || rem != wantRem {
			t.Fatalf("at %v: escalated %d reminded %d, want %d %d", clock.Now(), esc, rem, wantEsc, wantRem)
		}
	}
	clock.Advance(14 * time.Minute)
	sweep(0, 0)
	clock.Advance(2 * time.Minute)
	sweep(1, 0) // only the unacknowledged one
	sweep(0, 0) // idempotent
	if n := b.heardCount("escalated"); n != 1 {
		t.Fatalf("escalation notifications = %d", n)
	}
	clock.Advance(2 * time.Hour)
	sweep(0, 2) // both stuck in identified past the phase limit
	sweep(0, 0)
	clock.Advance(2 * time.Hour)
	sweep(0, 2) // reminded again after another limit
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := Actor{Name: "alice@example.com"}
	review := Review{RootCause: "a", LeakVector: "b", FollowUps: "c"}
	actions := map[string]func(s *Service, id int64) error{
		"mark contained":   func(s *Service, id int64) error { return s.MarkContained(ctx, id, a, "") },
		"confirm recovery": func(s *Service, id int64) error { return s.ConfirmRecovery(ctx, id, a, "") },
		"close":            func(s *Service, id int64) error { return s.Close(ctx, id, a, review) },
		"false positive":   func(s *Service, id int64) error { return s.MarkFalsePositive(ctx, id, a, "test fixture") },
		"accept risk":      func(s *Service, id int64) error { return s.AcceptRisk(ctx, id, a, "sandbox key") },
		"reopen":           func(s *Service, id int64) error { return s.Reopen(ctx, id, a, "seen again") },
	}
	tests := []struct {
		from   Phase
		action string
		to     Phase // "" = refused
	}{
		{PhaseIdentified, "mark contained", PhaseContained},
		{PhaseIdentified, "confirm recovery", ""},
		{PhaseIdentified, "close", ""},
		{PhaseIdentified, "false positive", PhaseFalsePositive},
		{PhaseContained, "accept risk", PhaseAcceptedRisk},
		{PhaseContained, "confirm recovery", ""},
		{PhaseEradicated, "confirm recovery", PhaseRecovered},
		{PhaseRecovered, "close", PhaseClosed},
		{PhaseClosed, "reopen", PhaseIdentified},
		{PhaseFalsePositive, "reopen", PhaseIdentified},
		{PhaseClosed, "mark contained", ""},
		{PhaseIdentified, "reopen", ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+" "+tt.action, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
				t.Fatal(err)
			}
			var id int64
			if err := b.pool.QueryRow(ctx, `UPDATE incidents SET phase = $1 RETURNING id`, tt.from).Scan(&id); err != nil {
				t.Fatal(err)
			}
			err := actions[tt.action](b.svc, id)
			var got Phase
			if err := b.pool.QueryRow(ctx, `SELECT phase FROM incidents`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if tt.to == "" {
				if !errors.Is(err, ErrInvalidTransition) || got != tt.from {
					t.Fatalf("err %v, phase %s", err, got)
				}
				return
			}
			if err != nil || got != tt.to {
				t.Fatalf("err %v, phase %s want %s", err, got, tt.to)
			}
		})
	}

	t.Run("side exits need a reason; notes are kept", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if err := b.svc.AcceptRisk(ctx, id, a, "  "); !errors.Is(err, ErrReasonRequired) {
			t.Fatalf("accept risk without reason: %v", err)
		}
		if err := b.svc.AddNote(ctx, id, a, "looking into it"); err != nil {
			t.Fatal(err)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incident_events WHERE kind = 'note' AND actor = 'alice@example.com' AND details ->> 'note' = 'looking into it'`); n != 1 {
			t.Fatalf("notes = %d", n)
		}
	})
}

func TestComputeSeverity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   SeverityInput
		want Severity
	}{
		{SeverityInput{Provider: "aws", Public: true}, SeverityHigh},
		{SeverityInput{Provider: "aws", Environment: "production", Public: true}, SeverityCritical},
		{SeverityInput{Provider: "aws", Environment: "development", Public: true}, SeverityMedium},
		{SeverityInput{Provider: "", Public: true}, SeverityMedium},
		{SeverityInput{Provider: "", Environment: "development", Scopes: "read-only", Public: true}, SeverityLow},
		{SeverityInput{Provider: "github", Scopes: "repo admin", Public: true}, SeverityCritical},
		{SeverityInput{Provider: "github", Public: false}, SeverityMedium},
		{SeverityInput{Provider: "stripe", Public: true, Reach: 5000}, SeverityCritical},
		{SeverityInput{Provider: "aws", Environment: "production", Scopes: "admin", Public: true, Reach: 5000}, SeverityCritical},
	}
	for _, tt := range tests {
		if got := ComputeSeverity(tt.in); got != tt.want {
			t.Errorf("ComputeSeverity(%+v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestKeyRotation: the registry's rotation moves the key's open incident to
// eradicated in the rotation's own transaction.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
		t.Fatal(err)
	}
	store := keys.NewStore(b.pool).OnRotateTx(b.svc.KeyRotatedTx)
	fp, err := matcher.Compute([]byte("AKIAZ7QF3LWEXAMPLE12"), matcher.ComputeOpts{AllowWeak: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Rotate(ctx, audit.System, b.orgID, b.keyID, fp); err != nil {
		t.Fatal(err)
	}
	var phase Phase
	var contained, eradicated *time.Time
	if err := b.pool.QueryRow(ctx, `SELECT phase, contained_at, eradicated_at FROM incidents`).Scan(&phase, &contained, &eradicated); err != nil {
		t.Fatal(err)
	}
	if phase != PhaseEradicated || contained == nil || eradicated == nil {
		t.Fatalf("phase %s contained %v eradicated %v", phase, contained, eradicated)
	}
	// A key without an open incident rotates as before.
	fp2, _ := matcher.Compute([]byte("AKIAZ7QF3LWEXAMPLE34"), matcher.ComputeOpts{AllowWeak: true})
	if _, err := b.pool.Exec(ctx, `UPDATE incidents SET phase = 'closed'`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Rotate(ctx, audit.System, b.orgID, b.keyID, fp2); err != nil {
		t.Fatal(err)
	}
}

// TestKeyRevokedInRegistry: revoking the key in the registry contains its
// open incident, in the registry's transaction.
func TestKeyRevokedInRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
		t.Fatal(err)
	}
	store := keys.NewStore(b.pool).OnStateTx(b.svc.KeyStateChangedTx)
	if _, err := store.SetState(ctx, audit.System, b.orgID, b.keyID, keys.StateRetired); err != nil {
		t.Fatal(err)
	}
	var phase Phase
	if err := b.pool.QueryRow(ctx, `SELECT phase FROM incidents`).Scan(&phase); err != nil || phase != PhaseIdentified {
		t.Fatalf("after retiring: %s %v", phase, err)
	}
	if _, err := store.SetState(ctx, audit.System, b.orgID, b.keyID, keys.StateRevoked); err != nil {
		t.Fatal(err)
	}
	var actor string
	if err := b.pool.QueryRow(ctx, `SELECT i.phase, e.actor FROM incidents i JOIN incident_events e ON e.incident_id = i.id AND e.to_phase = 'contained'`).Scan(&phase, &actor); err != nil {
		t.Fatal(err)
	}
	if phase != PhaseContained || actor != "key-registry" {
		t.Fatalf("phase %s by %s", phase, actor)
	}
	// Revoking again is a no-op.
	if _, err := store.SetState(ctx, audit.System, b.orgID, b.keyID, keys.StateRevoked); err != nil {
		t.Fatal(err)
	}
}

// TestOpenedRecordsOwnerAndSeverity: identification sets severity from the
// key's environment and notes, and records the key's owner.
func TestOpenedRecordsOwnerAndSeverity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	if _, err := b.pool.Exec(ctx, `UPDATE keys SET owner = 'payments-team', environment = 'development', notes = 'read-only reporting key'`); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
		t.Fatal(err)
	}
	var sev, owner string
	if err := b.pool.QueryRow(ctx, `SELECT i.severity, e.details ->> 'owner' FROM incidents i JOIN incident_events e ON e.incident_id = i.id AND e.kind = 'opened'`).Scan(&sev, &owner); err != nil {
		t.Fatal(err)
	}
	// aws (high) − development − read-only = low.
	if sev != string(SeverityLow) || owner != "payments-team" {
		t.Fatalf("severity %s owner %q", sev, owner)
	}
}

// TestReopenWhileAnotherIsOpen: an old incident cannot be reopened while
// the key has a newer open one.
func TestReopenWhileAnotherIsOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
		t.Fatal(err)
	}
	var old int64
	if err := b.pool.QueryRow(ctx, `UPDATE incidents SET phase = 'false_positive' RETURNING id`).Scan(&old); err != nil {
		t.Fatal(err)
	}
	// A different secret of the key: a new incident.
	f := b.finding("https://x/2", 2)
	if _, err := b.pool.Exec(ctx, `UPDATE keys SET fingerprint = 'lw1:second'`); err != nil {
		t.Fatal(err)
	}
	f.Fingerprint = "lw1:second"
	if err := b.svc.Record(ctx, []crawler.Finding{f}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, b.pool, `SELECT count(*) FROM incidents WHERE state = 'open'`); n != 1 {
		t.Fatalf("open incidents = %d", n)
	}
	if err := b.svc.Reopen(ctx, old, Actor{Name: "alice@example.com"}, "was real"); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("reopen = %v", err)
	}
}

// TestSeverityFollowsExposure: a sighting in a private repository opens the
// incident one level lower; a later sighting in a popular public repository
// raises it (with a timeline entry), a quieter one never lowers it, and a
// regression takes the severity of its own sighting.
func TestSeverityFollowsExposure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	severity := func() Severity {
		t.Helper()
		var s Severity
		if err := b.pool.QueryRow(ctx, `SELECT severity FROM incidents`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := b.pool.Exec(ctx, `UPDATE keys SET environment = 'staging'`); err != nil {
		t.Fatal(err)
	}
	// aws (high), staging: private −1, reach ≥ 1000 +1.
	sightings := []struct {
		url         string
		private     bool
		reach       int
		closeBefore bool
		want        Severity
	}{
		{"https://x/private", true, 0, false, SeverityMedium},
		{"https://x/popular", false, 4200, false, SeverityCritical},
		{"https://x/quiet", true, 0, false, SeverityCritical}, // never lowered
		{"https://x/again", true, 0, true, SeverityMedium},    // a regression: its own severity
	}
	for i, st := range sightings {
		if st.closeBefore {
			if _, err := b.pool.Exec(ctx, `UPDATE incidents SET phase = 'closed', closed_at = now()`); err != nil {
				t.Fatal(err)
			}
		}
		f := b.finding(st.url, i+1)
		f.Private, f.Reach = st.private, st.reach
		if err := b.svc.Record(ctx, []crawler.Finding{f}); err != nil {
			t.Fatal(err)
		}
		if got := severity(); got != st.want {
			t.Fatalf("after %s: severity %s, want %s", st.url, got, st.want)
		}
	}
	var storedPrivate bool
	var storedReach *int
	if err := b.pool.QueryRow(ctx, `SELECT private, reach FROM occurrences WHERE url = 'https://x/private'`).Scan(&storedPrivate, &storedReach); err != nil {
		t.Fatal(err)
	}
	if !storedPrivate || storedReach != nil {
		t.Fatalf("occurrence private %v reach %v, want true and unknown", storedPrivate, storedReach)
	}
	var details map[string]any
	if err := b.pool.QueryRow(ctx, `SELECT details FROM incident_events WHERE kind = 'severity_raised'`).Scan(&details); err != nil {
		t.Fatalf("not one severity_raised entry: %v", err)
	}
	if details["from"] != "medium" || details["to"] != "critical" || details["url"] != "https://x/popular" {
		t.Fatalf("severity_raised details %v", details)
	}
	if n := count(t, b.pool, `SELECT count(*) FROM incident_events WHERE kind = 'severity_raised'`); n != 1 {
		t.Fatalf("%d severity_raised entries, want 1", n)
	}
}

// TestActionAuditIsAtomic: an action's audit entry is written in the
// action's transaction, so an action whose audit entry cannot be written
// is not done, and a done action always has its entry.
func TestActionAuditIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	// A detail JSON cannot encode makes the audit write fail.
	bad := Actor{Name: "resp@acme.example", OrgID: b.orgID, Details: map[string]any{"x": make(chan int)}}
	if err := b.svc.Acknowledge(ctx, id, bad); err == nil {
		t.Fatal("acknowledge succeeded without its audit entry")
	}
	if n := count(t, b.pool, `SELECT count(*) FROM incidents WHERE acknowledged_at IS NOT NULL`); n != 0 {
		t.Fatal("the incident was acknowledged although its audit entry failed")
	}
	good := Actor{Name: "resp@acme.example", OrgID: b.orgID}
	if err := b.svc.Acknowledge(ctx, id, good); err != nil {
		t.Fatal(err)
	}
	if n := count(t, b.pool, `SELECT count(*) FROM audit_log WHERE action = 'incident.acknowledge'`); n != 1 {
		t.Fatalf("%d audit entries, want 1", n)
	}
}
