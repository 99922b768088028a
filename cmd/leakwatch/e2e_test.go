package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
)

// slackReceiver is a fake Slack incoming webhook.
type slackReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newSlackReceiver(t *testing.T) *slackReceiver {
	r := &slackReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if req.Method != http.MethodPost || !json.Valid(b) {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.mu.Unlock()
		io.WriteString(w, "ok") //nolint:errcheck
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *slackReceiver) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

func randomToken(t testing.TB, prefix string, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	b.WriteString(prefix)
	for range n {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteByte(alphabet[i.Int64()])
	}
	return b.String()
}

func eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndToEnd drives the walking skeleton through the real wiring: a key is
// registered, a fake GitHub serves real recorded events plus one comment
// holding the secret, and the test checks the incident, its occurrence, the
// Slack alert (without the secret), the incidents page, de-duplication of a
// second sighting, and a clean shutdown.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := leakedKeyFixture(t, "deploy-bot token")
	dbURL, pool, slackFake, secret := fx.DBURL, fx.Pool, fx.Slack, fx.Secret

	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPollInterval(1)
	recorded, err := githubtest.Recorded()
	if err != nil {
		t.Fatal(err)
	}
	gh.Publish(recorded[:150]...)
	// Severity weighs the repository's reach, asked of GitHub at match time.
	gh.SetRepoExposure("octo-org/payments", false, 2500, 300)
	leakAt := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	gh.Publish(githubtest.CommentEvent(27244207336, "octo-org/payments", "mallory",
		"CI still fails, here is my config:\n```\nexport GITHUB_TOKEN=\""+secret+"\"\n```\n", leakAt))

	env := map[string]string{
		"DATABASE_URL":                       dbURL,
		"LEAKWATCH_GITHUB_API_URL":           gh.APIURL(),
		"LEAKWATCH_WEBHOOK_ALLOW_NETS":       "127.0.0.0/8", // the fakes are on loopback
		"LEAKWATCH_GITHUB_TOKENS":            "test-token-1,test-token-2",
		"LEAKWATCH_GITHUB_MIN_POLL_INTERVAL": "100ms",
		"LEAKWATCH_KEY_RELOAD_INTERVAL":      "1s",
		"LEAKWATCH_LOG_LEVEL":                "debug",
	}
	svc := startService(t, env)
	base, logs := svc.Base, svc.Logs

	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %d", resp.StatusCode)
	}

	eventually(t, "the Slack alert", 30*time.Second, func() bool { return len(slackFake.messages()) == 1 })
	msg := slackFake.messages()[0]
	for _, want := range []string{"deploy-bot token", "octo-org/payments", "issuecomment-27244207336"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Slack message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, secret) || strings.Contains(msg, secret[4:20]) {
		t.Fatalf("Slack message contains the secret:\n%s", msg)
	}

	var (
		incidents, occurrences int
		url, actor, preview    string
		line                   int
		eventAt                time.Time
	)
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM incidents WHERE state = 'open'`).Scan(&incidents); err != nil {
		t.Fatal(err)
	}
	var title string
	var fetchedAt, detectedAt time.Time
	if err := pool.QueryRow(ctx, `SELECT count(*), min(url), min(actor), min(preview), min(line), min(event_at),
			min(title), min(fetched_at), min(detected_at) FROM occurrences`).
		Scan(&occurrences, &url, &actor, &preview, &line, &eventAt, &title, &fetchedAt, &detectedAt); err != nil {
		t.Fatal(err)
	}
	// Provenance keeps the title and when the event was fetched.
	if title != "Build fails" || fetchedAt.Before(leakAt) || fetchedAt.After(detectedAt) {
		t.Errorf("occurrence title %q fetched_at %v detected_at %v", title, fetchedAt, detectedAt)
	}
	if incidents != 1 || occurrences != 1 {
		t.Fatalf("incidents=%d occurrences=%d, want 1 and 1", incidents, occurrences)
	}
	if url != "https://github.com/octo-org/payments/issues/7#issuecomment-27244207336" || actor != "mallory" || line != 3 || !eventAt.Equal(leakAt) {
		t.Errorf("occurrence = url %q actor %q line %d event_at %v", url, actor, line, eventAt)
	}
	if strings.Contains(preview, secret) || !strings.Contains(preview, "GITHUB_TOKEN") {
		t.Errorf("preview %q: want the line, redacted", preview)
	}
	var reach *int
	var private bool
	if err := pool.QueryRow(ctx, `SELECT reach, private FROM occurrences`).Scan(&reach, &private); err != nil {
		t.Fatal(err)
	}
	if reach == nil || *reach != 2800 || private {
		t.Errorf("occurrence reach %v private %v, want 2800 (stars plus forks) and public", reach, private)
	}

	// The incidents page needs a signed-in member of the organisation.
	owner, _, err := auth.NewStore(pool, auth.Config{}).EnsureUser(ctx, audit.System, "owner@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := auth.NewStore(pool, auth.Config{}).AddMember(ctx, audit.System, fx.OrgID, owner.ID, auth.RoleOwner); err != nil {
		t.Fatal(err)
	}
	link, err := auth.NewStore(pool, auth.Config{}).NewLoginLink(ctx, audit.System, owner.ID, fx.OrgID)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	// The link's token is URL-safe base64: no form escaping needed.
	if resp, err := browser.Post(base+"/signin/link", "application/x-www-form-urlencoded", strings.NewReader("token="+link)); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	page := getWith(t, browser, base+"/incidents")
	for _, want := range []string{"deploy-bot token", "acme", "issuecomment-27244207336", "open"} {
		if !strings.Contains(page, want) {
			t.Errorf("incidents page lacks %q", want)
		}
	}
	if strings.Contains(page, secret) {
		t.Fatal("incidents page contains the secret")
	}

	// A second sighting of the same key is an occurrence, not an incident,
	// and sends no second alert.
	gh.Publish(githubtest.CommentEvent(27244207400, "octo-org/payments-fork", "mallory",
		"again: "+secret, leakAt.Add(time.Minute)))
	eventually(t, "the second occurrence", 30*time.Second, func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM occurrences`).Scan(&n)
		return n == 2
	})
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM incidents`).Scan(&incidents); err != nil {
		t.Fatal(err)
	}
	if incidents != 1 {
		t.Fatalf("incidents = %d after a second sighting, want 1", incidents)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(slackFake.messages()); n != 1 {
		t.Fatalf("%d Slack messages, want 1", n)
	}
	if gh.NotModified() == 0 {
		t.Error("the poller never sent a conditional request that came back 304")
	}

	metrics := get(t, base+"/metrics")
	for _, want := range []string{"go_goroutines", "leakwatch_http_requests_total", "leakwatch_river_jobs_worked_total", "leakwatch_crawler_findings_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	svc.Stop(t)
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "test-token-1") {
		t.Fatal("logs contain a secret")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	return getWith(t, http.DefaultClient, url)
}

func getWith(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	return string(b)
}
