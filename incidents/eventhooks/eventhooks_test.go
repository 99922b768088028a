package eventhooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

var loopback = webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

// harness is a database with the package's store, worker and the incidents
// service, as serve wires them.
type harness struct {
	pool  *pgxpool.Pool
	rc    *jobs.Client
	store *Store
	inc   *incidents.Service
	w     *Worker
}

// newHarness sets one up; encKey is LEAKWATCH_ENCRYPTION_KEY ("" for none)
// and baseURL the worker's link base.
func newHarness(t *testing.T, encKey, baseURL string) harness {
	t.Helper()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc, err := jobs.NewClient(pool, jobs.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.Parse(encKey)
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(pool, box)
	key, err := webhook.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	inc := incidents.NewService(pool, rc, logger, incidents.Config{})
	w := NewWorker(pool, store, inc, webhook.NewSender(webhook.NewHTTPClient(loopback, 5*time.Second), loopback, &key, nil), baseURL, logger)
	return harness{pool: pool, rc: rc, store: store, inc: inc, w: w}
}

// queued returns the arguments of the River jobs of kind, in insertion order.
func queued[T any](t *testing.T, pool *pgxpool.Pool, kind string) []T {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT args FROM river_job WHERE kind = $1 ORDER BY id`, kind)
	if err != nil {
		t.Fatal(err)
	}
	raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, raw := range raws {
		var a T
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// receiver is a subscriber that verifies every request like a real one.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	verifier webhook.Verifier
	got      []Payload
	ids      []string
	status   int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: http.StatusNoContent}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := r.verifier.Verify(req.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if r.status >= 300 {
			w.WriteHeader(r.status)
			return
		}
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		r.got = append(r.got, p)
		r.ids = append(r.ids, req.Header.Get(webhook.HeaderID))
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.Close)
	return r
}

func TestEventWebhooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "https://leakwatch.example")
	pool, rc, store, inc, w := h.pool, h.rc, h.store, h.inc, h.w
	inc = incidents.NewService(pool, rc, slog.New(slog.DiscardHandler), incidents.Config{Notifier: NewNotifier(rc)})

	var orgID, otherOrg, keyID int64
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('acme') RETURNING id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('other') RETURNING id`).Scan(&otherOrg); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, 'deploy', 'lw1:test', 'aws') RETURNING id`, orgID).Scan(&keyID); err != nil {
		t.Fatal(err)
	}

	all, opened, foreign := newReceiver(t), newReceiver(t), newReceiver(t)
	subAll, secretAll, err := store.Create(ctx, audit.System, orgID, all.URL+"/siem", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, secretOpened, err := store.Create(ctx, audit.System, orgID, opened.URL+"/pager", []string{EventIncidentOpened})
	if err != nil {
		t.Fatal(err)
	}
	_, secretForeign, err := store.Create(ctx, audit.System, otherOrg, foreign.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	all.verifier = webhook.Verifier{Secrets: []string{secretAll}}
	opened.verifier = webhook.Verifier{Secrets: []string{secretOpened}}
	foreign.verifier = webhook.Verifier{Secrets: []string{secretForeign}}
	var stored string
	if err := pool.QueryRow(ctx, `SELECT hmac_secret FROM event_webhooks WHERE id = $1`, subAll.ID).Scan(&stored); err != nil || strings.Contains(stored, secretAll) {
		t.Fatalf("secret stored in the clear: %v", err)
	}
	if _, _, err := store.Create(ctx, audit.System, orgID, "ftp://x", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ftp URL: %v", err)
	}
	if _, _, err := store.Create(ctx, audit.System, orgID, "https://x.example", []string{"key.leaked"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown event: %v", err)
	}

	hostileRepo := `evil/<script>alert(1)</script>","injected":"x`
	if err := inc.Record(ctx, []crawler.Finding{{KeyID: keyID, OrgID: orgID, Fingerprint: "lw1:test", Source: "github", EventID: "1",
		URL: "https://github.com/evil/r/blob/x/a#L1", Repo: hostileRepo, Path: "a<!channel>", Line: 1, Actor: "<@U1>",
		Preview: "AKIA****", DetectedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	var incidentID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&incidentID); err != nil {
		t.Fatal(err)
	}
	if err := inc.Acknowledge(ctx, incidentID, incidents.System); err != nil { // not an event: nothing sent
		t.Fatal(err)
	}
	if err := inc.MarkContained(ctx, incidentID, incidents.System, "disabled"); err != nil {
		t.Fatal(err)
	}

	// Work every queued delivery, twice (a retried job sends nothing new).
	jobsArgs := queued[DeliverArgs](t, pool, "event_webhook")
	if len(jobsArgs) != 3 { // opened → all, opened; contained → all
		t.Fatalf("%d deliveries queued, want 3: %+v", len(jobsArgs), jobsArgs)
	}
	for range 2 {
		for _, a := range jobsArgs {
			if err := w.Work(ctx, &river.Job[DeliverArgs]{JobRow: &rivertype.JobRow{}, Args: a}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(all.got) != 2 || all.got[0].Type != EventIncidentOpened || all.got[1].Type != EventIncidentPhaseChanged {
		t.Fatalf("all-events subscriber got %+v", all.got)
	}
	if got := all.got[1].Data; got.FromPhase != "identified" || got.ToPhase != "contained" || got.Key.Name != "deploy" {
		t.Fatalf("phase change data %+v", got)
	}
	// The snapshot read through incidents reaches every field of the payload.
	if got := all.got[1].Data; got.OrgID != orgID || got.IncidentID == 0 || got.Key.ID != keyID || got.Key.Provider != "aws" ||
		got.Key.Fingerprint == "" || got.Severity == "" || got.Phase != "contained" || got.Actor == "" || got.Leak.DetectedAt.IsZero() {
		t.Fatalf("phase change data %+v", got)
	}
	if len(opened.got) != 1 || opened.got[0].Type != EventIncidentOpened || len(foreign.got) != 0 {
		t.Fatalf("filtered subscriber got %d, foreign %d", len(opened.got), len(foreign.got))
	}
	// Attacker-controlled text is plain data, exactly as seen.
	if l := all.got[0].Data.Leak; l.Repo != hostileRepo || l.Path != "a<!channel>" || l.Actor != "<@U1>" {
		t.Fatalf("leak data altered: %+v", l)
	}
	if all.ids[0] != all.got[0].ID || !strings.HasPrefix(all.ids[0], "msg_lwevt_") {
		t.Fatalf("webhook-id %s, payload id %s", all.ids[0], all.got[0].ID)
	}
	var delivered int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE kind = 'event' AND status = 'succeeded'`).Scan(&delivered); err != nil || delivered != 3 {
		t.Fatalf("delivery log: %d succeeded (%v)", delivered, err)
	}

	// A receiver that is down: the attempt is logged and the job snoozed.
	all.mu.Lock()
	all.status = http.StatusServiceUnavailable
	all.mu.Unlock()
	if err := inc.KeyRotated(ctx, keyID); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := pool.QueryRow(ctx, `SELECT args FROM river_job WHERE kind = 'event_webhook' ORDER BY id DESC LIMIT 1`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var a DeliverArgs
	_ = json.Unmarshal(raw, &a)
	err = w.Work(ctx, &river.Job[DeliverArgs]{JobRow: &rivertype.JobRow{}, Args: a})
	var snooze *river.JobSnoozeError
	if !errors.As(err, &snooze) {
		t.Fatalf("receiver down: %v, want a snooze", err)
	}
	var status string
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT status, attempts FROM webhook_deliveries WHERE message_id = $1`,
		"msg_lwevt_"+itoa(a.EventID)+"_"+itoa(a.SubscriptionID)).Scan(&status, &attempts); err != nil || status != "pending" || attempts != 1 {
		t.Fatalf("delivery %s after %d attempts (%v)", status, attempts, err)
	}

	// Unsubscribing stops deliveries; another org cannot delete ours.
	if err := store.Delete(ctx, audit.System, otherOrg, subAll.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cross-org delete: %v", err)
	}
	if err := store.Delete(ctx, audit.System, orgID, subAll.ID); err != nil {
		t.Fatal(err)
	}
	subs, err := store.List(ctx, orgID)
	if err != nil || len(subs) != 1 {
		t.Fatalf("list after delete: %v %v", subs, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
