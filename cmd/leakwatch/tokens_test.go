package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// runCLI runs one command in process and returns its exit code and output.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestFirstHourCLI walks the README's setup from the CLI alone on a
// database never migrated: orgs create migrates first, tokens create prints
// a token bound to the owner, set-revocation sets the default endpoint and
// prints its HMAC secret once, set-slack refuses the README's placeholder
// and a URL Slack refuses, and keeps one Slack accepts after its test post.
// (Not parallel: the CLI reads its settings from the environment.)
func TestFirstHourCLI(t *testing.T) {
	ctx := context.Background()
	dbURL := emptyDatabase(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LEAKWATCH_LOG_LEVEL", "error")
	t.Setenv("LEAKWATCH_HTTP_ADDR", "127.0.0.1:8123")

	code, out, errOut := runCLI(t, "", "orgs", "create", "acme", "--owner", "you@example.com")
	if code != 0 {
		t.Fatalf("orgs create on an empty database = %d: %s", code, errOut)
	}
	if !strings.Contains(out, "http://127.0.0.1:8123/signin/link?token=") {
		t.Fatalf("sign-in link ignores LEAKWATCH_HTTP_ADDR: %s", out)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// tokens create: a working token, bound to the owner.
	if code, _, _ := runCLI(t, "", "tokens", "create", "--org", "acme", "--scope", "admin", "--name", "ci"); code != 2 {
		t.Errorf("tokens create --scope admin = %d, want 2", code)
	}
	code, out, errOut = runCLI(t, "", "tokens", "create", "--org", "acme", "--scope", "write", "--name", "ci")
	if code != 0 {
		t.Fatalf("tokens create = %d: %s", code, errOut)
	}
	authStore := auth.NewStore(pool, auth.Config{})
	tok, err := authStore.TokenByValue(ctx, strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("printed token %q does not authenticate: %v", out, err)
	}
	owner, err := authStore.UserByEmail(ctx, "you@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Scope != auth.ScopeWrite || tok.Name != "ci" || tok.CreatedBy != owner.ID {
		t.Fatalf("token %+v, want write \"ci\" created by user %d", tok, owner.ID)
	}
	if code, _, errOut := runCLI(t, "", "tokens", "create", "--org", "nope", "--scope", "read", "--name", "x"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("tokens create for a missing org = %d: %s", code, errOut)
	}

	// set-revocation: the default endpoint, with its HMAC secret once.
	if code, _, _ := runCLI(t, "", "orgs", "set-revocation", "acme", "--url", "ftp://x"); code != 2 {
		t.Errorf("set-revocation with an ftp URL = %d, want 2", code)
	}
	code, out, errOut = runCLI(t, "", "orgs", "set-revocation", "acme", "--url", "https://revoke.acme.example/leak", "--hmac")
	if code != 0 {
		t.Fatalf("set-revocation = %d: %s", code, errOut)
	}
	var url, secret string
	if err := pool.QueryRow(ctx, `SELECT url, hmac_secret FROM revocation_endpoints WHERE key_id IS NULL`).Scan(&url, &secret); err != nil {
		t.Fatal(err)
	}
	if url != "https://revoke.acme.example/leak" || secret == "" || !strings.Contains(out, secret) {
		t.Fatalf("endpoint %q secret printed=%v: %s", url, strings.Contains(out, secret), out)
	}

	// set-slack: shape first, then a test post that must be accepted.
	slack := newSlackHooks(t)
	for _, bad := range []string{"https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
		"http://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx", "https://example.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx"} {
		if code, _, errOut := runCLI(t, bad, "orgs", "set-slack", "acme"); code != 2 || strings.Contains(errOut, bad) {
			t.Errorf("set-slack %s = %d (want 2, URL not echoed): %s", bad, code, errOut)
		}
	}
	if n := slack.count(); n != 0 {
		t.Fatalf("a refused URL was posted to (%d)", n)
	}
	gone := "https://hooks.slack.com/services/T0123ABCD/B0123GONE/abcdefghijklmnopqrstuvwx"
	if code, _, errOut := runCLI(t, gone, "orgs", "set-slack", "acme"); code != 1 || !strings.Contains(errOut, "no_service") {
		t.Errorf("set-slack with a URL Slack refuses = %d: %s", code, errOut)
	}
	good := "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx"
	if code, _, errOut := runCLI(t, good, "orgs", "set-slack", "acme"); code != 0 {
		t.Fatalf("set-slack = %d: %s", code, errOut)
	}
	o, err := orgs.NewStore(pool).ByName(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !o.SlackConfigured || slack.count() != 2 || !strings.Contains(slack.last(), "acme") {
		t.Fatalf("slack configured=%v posts=%d last=%q", o.SlackConfigured, slack.count(), slack.last())
	}
}

// TestMigrateStatusListsBoth: `migrate status` lists River's migrations and
// Leakwatch's, pending then applied.
func TestMigrateStatusListsBoth(t *testing.T) {
	t.Setenv("DATABASE_URL", emptyDatabase(t))
	t.Setenv("LEAKWATCH_LOG_LEVEL", "error")
	code, out, errOut := runCLI(t, "", "migrate", "status")
	if code != 0 || !strings.Contains(out, "river 001") || !strings.Contains(out, "0001_") || strings.Contains(out, " applied") {
		t.Fatalf("status on an empty database = %d:\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "", "migrate"); code != 0 {
		t.Fatalf("migrate = %d: %s", code, errOut)
	}
	_, out, _ = runCLI(t, "", "migrate", "status")
	if strings.Contains(out, " pending\n") || !strings.Contains(out, "river 001") {
		t.Fatalf("status after migrate:\n%s", out)
	}
}

// emptyDatabase creates a database no migration has touched, dropped at
// cleanup.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = dbtest.DefaultURL
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("leakwatch_empty_%d", time.Now().UnixNano())
	conn, err := pgx.Connect(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropDatabase(t, admin, name) })
	u.Path = "/" + name
	return u.String()
}

// slackHooks fakes hooks.slack.com for set-slack's test post: it answers
// "ok" to any webhook but B0123GONE, which Slack would answer 404
// no_service.
type slackHooks struct {
	mu    sync.Mutex
	posts []string
}

func newSlackHooks(t *testing.T) *slackHooks {
	h := &slackHooks{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&m) != nil {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.posts = append(h.posts, m.Text)
		h.mu.Unlock()
		if strings.Contains(r.URL.Path, "B0123GONE") {
			http.Error(w, "no_service", http.StatusNotFound)
			return
		}
		io.WriteString(w, "ok") //nolint:errcheck
	}))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	target := srv.Listener.Addr().String()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) { return dial(ctx, network, target) }
	tr.TLSClientConfig.ServerName = "example.com" // httptest's certificate
	old := slackHTTPClient
	slackHTTPClient = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	t.Cleanup(func() { slackHTTPClient = old })
	return h
}

func (h *slackHooks) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.posts)
}

func (h *slackHooks) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.posts) == 0 {
		return ""
	}
	return h.posts[len(h.posts)-1]
}

// TestOrgsCreateWithoutAutoMigrate: with LEAKWATCH_AUTO_MIGRATE=false a
// command needing the schema refuses an empty database and names the fix.
func TestOrgsCreateWithoutAutoMigrate(t *testing.T) {
	t.Setenv("DATABASE_URL", emptyDatabase(t))
	t.Setenv("LEAKWATCH_LOG_LEVEL", "error")
	t.Setenv("LEAKWATCH_AUTO_MIGRATE", "false")
	code, _, errOut := runCLI(t, "", "orgs", "create", "acme")
	if code != 1 || !strings.Contains(errOut, "run `leakwatch migrate`") || strings.Contains(errOut, "does not exist") {
		t.Fatalf("orgs create on an empty database without auto-migration = %d: %s", code, errOut)
	}
}
