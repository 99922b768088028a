package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestEndToEndOnboarding takes a new tenant from nothing to an incident
// through the public surfaces only: `orgs create --owner` prints a sign-in
// link, the owner signs in and creates an API token, `keys import`
// registers a secret by fingerprint against the running server, the
// running worker picks the key up without a restart, a leak in the GitHub
// stream opens an incident that only this organisation sees, and the audit
// log names who did what. (Not parallel: the CLI reads its settings from
// the environment.)
func TestEndToEndOnboarding(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LEAKWATCH_LOG_LEVEL", "error")

	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPollInterval(1)
	recorded, err := githubtest.Recorded()
	if err != nil {
		t.Fatal(err)
	}
	gh.Publish(recorded[:50]...)

	env := map[string]string{
		"DATABASE_URL":                       dbURL,
		"LEAKWATCH_HTTP_ADDR":                "127.0.0.1:0",
		"LEAKWATCH_OPS_ADDR":                 "127.0.0.1:0",
		"LEAKWATCH_GITHUB_API_URL":           gh.APIURL(),
		"LEAKWATCH_WEBHOOK_ALLOW_NETS":       "127.0.0.0/8", // the fakes are on loopback
		"LEAKWATCH_GITHUB_TOKENS":            "test-token-1",
		"LEAKWATCH_GITHUB_MIN_POLL_INTERVAL": "100ms",
		"LEAKWATCH_KEY_RELOAD_INTERVAL":      "1h", // only change notifications can make the key live in time
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srvCtx, stop := context.WithCancel(ctx)
	addrCh := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(srvCtx, cfg, logger, func(a string) { addrCh <- a }) }()
	var base string
	select {
	case a := <-addrCh:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("Serve returned early: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not start")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})

	// Two tenants, each created by the CLI with an owner.
	signIn := func(org, owner string) (*http.Client, string) {
		t.Helper()
		var out, errOut strings.Builder
		if code := run(ctx, []string{"orgs", "create", org, "--owner", owner, "--json"}, strings.NewReader(""), &out, &errOut); code != 0 {
			t.Fatalf("orgs create %s = %d: %s", org, code, errOut.String())
		}
		var created orgCreated
		if err := json.Unmarshal([]byte(out.String()), &created); err != nil {
			t.Fatal(err)
		}
		link, err := url.Parse(created.SigninURL)
		if err != nil {
			t.Fatal(err)
		}
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		// Opening the link spends nothing; its button posts the token.
		resp, err := c.Get(base + "/signin/link?" + link.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		resp, err = c.PostForm(base+"/signin/link", link.Query())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var me struct {
			CSRFToken string `json:"csrf_token"`
			Role      string `json:"role"`
		}
		getJSON(t, c, base+"/api/v1/me", &me)
		if me.Role != "owner" || me.CSRFToken == "" {
			t.Fatalf("%s owner after the link: %+v", org, me)
		}
		return c, me.CSRFToken
	}
	acme, csrf := signIn("acme", "owner@acme.example")
	globex, _ := signIn("globex", "owner@globex.example")

	// The owner creates a write token; the CLI imports a secret with it.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/tokens", strings.NewReader(`{"name":"ci","scope":"write"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err := acme.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		Value string `json:"value"`
	}
	json.NewDecoder(resp.Body).Decode(&tok) //nolint:errcheck
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || tok.Value == "" {
		t.Fatalf("create token = %d", resp.StatusCode)
	}
	secret := randomToken(t, "ghp_", 36)
	var out, errOut strings.Builder
	if code := run(ctx, []string{"keys", "import", "--api", base, "--token", tok.Value, "--name", "deploy-bot token", "--env", "production"},
		strings.NewReader(secret+"\n"), &out, &errOut); code != 0 {
		t.Fatalf("keys import = %d: %s", code, errOut.String())
	}

	// The secret leaks; the running worker must already know the key.
	gh.Publish(githubtest.CommentEvent(27244207999, "octo-org/payments", "mallory",
		"here is my config: GITHUB_TOKEN="+secret+"\n", time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(getPage(t, acme, base+"/incidents"), "deploy-bot token") {
		if time.Now().After(deadline) {
			t.Fatal("no incident for the imported key")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if page := getPage(t, globex, base+"/incidents"); strings.Contains(page, "deploy-bot token") || strings.Contains(page, "octo-org/payments") {
		t.Fatal("another organisation sees the incident")
	}

	// The audit log names the token as the registrant.
	var audit struct {
		Items []struct{ Action, Actor string } `json:"items"`
	}
	getJSON(t, acme, base+"/api/v1/audit", &audit)
	found := false
	for _, e := range audit.Items {
		if e.Action == "key.create" && e.Actor == "token:ci" {
			found = true
		}
	}
	if !found {
		t.Fatalf("audit log lacks the import: %+v", audit.Items)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not stop")
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), tok.Value) {
		t.Fatal("logs contain a secret or the API token")
	}
}

func getJSON(t *testing.T, c *http.Client, u string, v any) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %d: %s", u, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func getPage(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	return getWith(t, c, u)
}
