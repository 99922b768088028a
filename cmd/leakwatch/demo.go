package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/crawler/paste/pastetest"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/revoketest"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/database"
	"github.com/leakwatch/leakwatch/matcher"
	"github.com/leakwatch/leakwatch/migrations"
	"github.com/leakwatch/leakwatch/web"
)

const demoUsage = `Usage: leakwatch demo

Runs the whole product offline, in one process, on loopback: a simulated
GitHub streaming recorded real public events, a simulated paste site, a
Slack sink (read it on the dashboard's "Demo Slack" page) and a revocation
receiver. It creates the organisation "demo" with a handful of keys and,
over the first minute, leaks some of them: one is revoked automatically,
one waits for a human, one is seen again after rotation.

It uses its own database, leakwatch_demo (or DATABASE_URL's name + "_demo"),
dropped and created afresh at every start: running it again starts over.
The dashboard listens on LEAKWATCH_HTTP_ADDR (default 127.0.0.1:8080).
The service logs only warnings and errors unless LEAKWATCH_LOG_LEVEL is
set. Ctrl-C stops everything.
`

// demoSettings are the settings `demo` reads; every other one it sets itself.
var demoSettings = []string{"DATABASE_URL", "LEAKWATCH_DATA_DIR", "LEAKWATCH_EMBEDDED_PG_PORT", "LEAKWATCH_HTTP_ADDR", "LEAKWATCH_LOG_FORMAT", "LEAKWATCH_LOG_LEVEL"}

func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	if code, ok := parseFlags(fs, args, demoUsage, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "leakwatch demo: takes no arguments")
		return 2
	}
	cfg, ok := loadConfigOrFail(stderr)
	if !ok {
		return 2
	}
	if os.Getenv("LEAKWATCH_HTTP_ADDR") == "" {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	if os.Getenv("LEAKWATCH_OPS_ADDR") == "" {
		// One process on a newcomer's machine: the ops port is for
		// deployments, and :9090 may well be taken by something else.
		cfg.OpsAddr = opsOff
	}
	if os.Getenv("LEAKWATCH_LOG_LEVEL") == "" {
		// The demo's own lines tell the story; the service's go to stderr
		// only when something is wrong.
		cfg.LogLevel = slog.LevelWarn
	}
	logger := newLogger(cfg, stderr)
	if err := runDemoService(ctx, cfg, logger, stdout); err != nil {
		fmt.Fprintln(stderr, "leakwatch demo:", err)
		return 1
	}
	return 0
}

// demoDatabaseName never names the real database: leakwatch_demo on the
// local or embedded server, or DATABASE_URL's own name with "_demo".
func demoDatabaseName(databaseURL string) string {
	if databaseURL == "" {
		return database.DefaultName + "_demo"
	}
	u, err := url.Parse(databaseURL)
	name := ""
	if err == nil {
		name = strings.TrimPrefix(path.Clean(u.Path), "/")
	}
	if name == "" || name == "." {
		name = database.DefaultName
	}
	return name + "_demo"
}

func runDemoService(ctx context.Context, cfg Config, logger *slog.Logger, stdout io.Writer) error {
	// The outside world, on loopback.
	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPollInterval(1)
	pasteSite := pastetest.NewFeed(pastetest.FormatRSS)
	defer pasteSite.Close()
	sink := newSlackSink()
	defer sink.Close()
	receiver := revoketest.NewServer(nil, nil, nil)
	defer receiver.Close()

	// Only addresses (and the fakes' fast intervals, through the normal
	// settings) differ from production.
	cfg.GitHubAPIURL, cfg.GitHubRawURL = gh.APIURL(), gh.RawURL()
	// Enough simulated tokens for the poller's budget to cover GitHub's
	// real rate, so the demo does not open with a warning to add tokens.
	cfg.GitHubTokens = nil
	for i := range 30 {
		cfg.GitHubTokens = append(cfg.GitHubTokens, fmt.Sprintf("demo-token-%d", i+1))
	}
	cfg.GitHubPoll = true
	cfg.GitHubMinPoll = time.Second
	cfg.Roles = []string{RoleWeb, RoleWorker, RoleCrawler}
	cfg.AutoMigrate = true
	cfg.WebhookAllowNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	pc, err := paste.ParseConfig([]byte(`{"sources":[{"type":"feed","name":"demo-paste","format":"rss","url":` +
		strconv.Quote(pasteSite.FeedURL()) + `,"raw_url_template":` + strconv.Quote(pasteSite.URL+"/raw/{id}") + `,"interval":"2s"}]}`))
	if err != nil {
		return err
	}
	cfg.PasteSources = pc
	host, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	// Take the address before resetting the database, and hold it: a demo
	// already running there keeps its database. Port 0 is resolved now,
	// since the sign-in and Slack links need the port before serving.
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("cannot listen on %s (is a demo or serve already running there? set LEAKWATCH_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	defer ln.Close() // serve closes it first; this covers an early return
	cfg.HTTPAddr = ln.Addr().String()
	cfg.BaseURL = baseURLFor(cfg.HTTPAddr)

	name := demoDatabaseName(cfg.DatabaseURL)
	db, err := database.Open(ctx, database.Config{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, EmbeddedPort: cfg.EmbeddedPGPort, Name: name, Reset: true}, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Migrate(ctx, db.Pool, logger); err != nil {
		return err
	}
	sc, err := setUpDemo(ctx, db, cfg, sink, receiver)
	if err != nil {
		return err
	}

	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, logger, func(string) { close(started) }, serveOpts{db: db, listener: ln, demoSlack: sink.Messages})
	}()
	select {
	case <-started:
	case err := <-done:
		return err
	}
	fmt.Fprintf(stdout, "Leakwatch demo on %s/incidents — sign in with %s (database %s; Ctrl-C stops it)\n", cfg.BaseURL, sc.signinURL, name)

	var bg sync.WaitGroup
	scCtx, stopScenario := context.WithCancel(ctx)
	bg.Go(func() { sc.run(scCtx, gh, pasteSite, stdout) })
	err = <-done
	stopScenario()
	bg.Wait()
	return err
}

// baseURLFor is the URL a browser on this machine reaches addr at.
func baseURLFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://localhost:8080"
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// demoKey is a key the demo registers, with its generated secret.
type demoKey struct {
	id     int64
	name   string
	secret string
}

type demoScenario struct {
	orgID     int64
	signinURL string
	keys      *keys.Store
	baseURL   string
	token     string // a write API token of the organisation
	// revoked is answered "revoked" by its endpoint; waiting has no
	// endpoint and waits for a human; rotated is rotated, then its old
	// secret leaks again; quiet never leaks.
	revoked, waiting, rotated demoKey
}

// setUpDemo creates the organisation, its owner's sign-in link, Slack and
// the keys, as an operator would with the CLI.
func setUpDemo(ctx context.Context, db *database.DB, cfg Config, sink *slackSink, receiver *revoketest.Server) (*demoScenario, error) {
	orgStore := orgs.NewStore(db.Pool)
	owner, err := auth.NewStore(db.Pool, auth.Config{}).CreateOrgWithOwner(ctx, orgStore, audit.CLI, "demo", "you@example.com")
	if err != nil {
		return nil, err
	}
	o := owner.Org
	if err := orgStore.SetSlackWebhook(ctx, audit.CLI, o.ID, sink.URL+"/services/TDEMO/BDEMO/demo"); err != nil {
		return nil, err
	}
	// The demo acts later (a rotation) through the API, as a script would.
	token, _, err := auth.NewStore(db.Pool, auth.Config{}).CreateToken(ctx, audit.CLI, o.ID, owner.Owner.UserID, "demo script", auth.ScopeWrite)
	if err != nil {
		return nil, err
	}
	sc := &demoScenario{orgID: o.ID, signinURL: signinURL(cfg.BaseURL, owner.LoginToken), keys: keys.NewStore(db.Pool), baseURL: cfg.BaseURL, token: token}
	register := func(name, secret, env, notes string) (demoKey, error) {
		fp, err := matcher.Compute([]byte(secret), matcher.ComputeOpts{})
		if err != nil {
			return demoKey{}, fmt.Errorf("fingerprint of %s: %w", name, err)
		}
		k, err := sc.keys.Register(ctx, audit.CLI, o.ID, keys.Params{Name: name, Fingerprint: fp, Environment: env, Notes: notes, Owner: "payments-team"})
		if err != nil {
			return demoKey{}, err
		}
		return demoKey{id: k.ID, name: name, secret: secret}, nil
	}
	if sc.revoked, err = register("payments-stripe-live", "sk_live_"+randomString(alnum, 32), "production", "charges and refunds"); err != nil {
		return nil, err
	}
	if sc.waiting, err = register("deploy-aws-access-key", "AKIA"+randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16), "production", "admin on the deploy account"); err != nil {
		return nil, err
	}
	if sc.rotated, err = register("alerts-slack-bot", "xoxb-"+randomString("0123456789", 12)+"-"+randomString("0123456789", 13)+"-"+randomString(alnum, 24), "staging", "posts to #alerts"); err != nil {
		return nil, err
	}
	if _, err := register("docs-gitlab-token", "glpat-"+randomString(alnum, 20), "development", "read-only"); err != nil {
		return nil, err
	}
	// The receiver checks each request's HMAC signature, as a customer's
	// endpoint should.
	secret, err := incidents.NewService(db.Pool, nil, slog.New(slog.DiscardHandler), incidents.Config{}).SetRevocationEndpoint(ctx, audit.CLI, o.ID, sc.revoked.id, receiver.URL+"/revoke", true)
	if err != nil {
		return nil, err
	}
	receiver.AddSecret(secret)
	return sc, nil
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// run streams the recorded events and plants the leaks, on a schedule that
// shows an incident within seconds and every path within about a minute.
func (sc *demoScenario) run(ctx context.Context, gh *githubtest.Server, site *pastetest.Feed, stdout io.Writer) {
	recorded, err := githubtest.Recorded()
	if err != nil {
		fmt.Fprintln(stdout, "demo: recorded events:", err)
		return
	}
	start := time.Now()
	nextID := int64(90_000_000_000)
	id := func() int64 { nextID++; return nextID }
	say := func(format string, args ...any) {
		fmt.Fprintf(stdout, "demo +%2.0fs: %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	type step struct {
		at time.Duration
		do func()
	}
	steps := []step{
		{2 * time.Second, func() {
			gh.Publish(githubtest.CommentEvent(id(), "acme-demo/checkout", "newhire42",
				"Tests fail locally, here is my .env:\nSTRIPE_KEY="+sc.revoked.secret+"\n", time.Now()))
			say("leaked %s in a GitHub issue comment (its revocation endpoint will answer \"revoked\")", sc.revoked.name)
		}},
		{8 * time.Second, func() {
			repo := "acme-demo/infra"
			base, head := githubtest.SHA("demo-base"), githubtest.SHA("demo-head")
			gh.AddCommits(repo,
				githubtest.Commit{SHA: base, Message: "initial", AuthorLogin: "ops-bot", Date: time.Now()},
				githubtest.Commit{SHA: head, Parents: []string{base}, Message: "deploy script", AuthorLogin: "ops-bot", Date: time.Now(),
					Files: []githubtest.File{{Path: "deploy/env.sh", Status: "added",
						Patch: "@@ -0,0 +1,3 @@\n+#!/bin/sh\n+export AWS_ACCESS_KEY_ID=" + sc.waiting.secret + "\n+export AWS_REGION=eu-west-1\n"}}})
			gh.SetBranch(repo, "main", head)
			gh.Publish(githubtest.PushEvent(id(), repo, "ops-bot", "refs/heads/main", base, head, time.Now()))
			say("leaked %s in a push (no revocation endpoint: it waits for a human)", sc.waiting.name)
		}},
		{14 * time.Second, func() {
			site.Publish(pastetest.Paste{Key: "dEm0" + randomString(alnum, 4), Title: "alerting config", User: "anonymous", Date: time.Now(),
				Text: "slack:\n  token: " + sc.rotated.secret + "\n  channel: '#alerts'\n"})
			say("leaked %s on a paste site", sc.rotated.name)
		}},
		{35 * time.Second, func() {
			fp, err := matcher.Compute([]byte("xoxb-"+randomString("0123456789", 12)+"-"+randomString("0123456789", 13)+"-"+randomString(alnum, 24)), matcher.ComputeOpts{})
			if err == nil {
				err = sc.rotate(ctx, sc.rotated.id, fp)
			}
			if err != nil {
				say("rotate %s: %v", sc.rotated.name, err)
				return
			}
			say("rotated %s", sc.rotated.name)
		}},
		{45 * time.Second, func() {
			gh.Publish(githubtest.CommentEvent(id(), "acme-demo/alerts", "copy-paster",
				"old config that used to work: SLACK_TOKEN="+sc.rotated.secret+"\n", time.Now()))
			say("the old secret of %s leaked again, after its rotation", sc.rotated.name)
		}},
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// About four recorded real events a second, renumbered so the
		// stream never runs dry or goes backwards.
		if len(recorded) > 0 {
			gh.Publish(renumber(recorded[0], id(), time.Now()))
			recorded = recorded[1:]
		}
		for next < len(steps) && time.Since(start) >= steps[next].at {
			steps[next].do()
			next++
		}
	}
}

// rotate rotates a key through the API, as a responder's script would.
func (sc *demoScenario) rotate(ctx context.Context, keyID int64, fp matcher.Fingerprint) error {
	body, err := json.Marshal(map[string]string{"fingerprint": fp.String()})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/api/v1/keys/%d/rotate", sc.baseURL, keyID), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+sc.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("rotate key %d: %s: %s", keyID, resp.Status, b)
	}
	return nil
}

// renumber gives a recorded event a new id and time, keeping the rest.
func renumber(raw json.RawMessage, id int64, at time.Time) json.RawMessage {
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return raw
	}
	ev["id"] = strconv.FormatInt(id, 10)
	ev["created_at"] = at.UTC().Format(time.RFC3339)
	out, err := json.Marshal(ev)
	if err != nil {
		return raw
	}
	return out
}

// slackSink stands in for a Slack incoming webhook: it keeps what it is
// sent, for the dashboard's Demo Slack page.
type slackSink struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []web.DemoSlackMessage
}

func newSlackSink() *slackSink {
	s := &slackSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		type textObj struct {
			Text string `json:"text"`
		}
		var m struct {
			Text   string `json:"text"`
			Blocks []struct {
				Text   *textObj  `json:"text"`
				Fields []textObj `json:"fields"`
			} `json:"blocks"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil || m.Text == "" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		// Show what a person would read: the blocks' text, else the fallback.
		var parts []string
		for _, b := range m.Blocks {
			if b.Text != nil && b.Text.Text != "" {
				parts = append(parts, b.Text.Text)
			}
			for _, f := range b.Fields {
				parts = append(parts, f.Text)
			}
		}
		text := strings.Join(parts, "\n")
		if text == "" {
			text = m.Text
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, web.DemoSlackMessage{At: time.Now(), Text: text})
		s.mu.Unlock()
		io.WriteString(w, "ok") //nolint:errcheck
	}))
	return s
}

// Messages returns what the sink received, oldest first.
func (s *slackSink) Messages() []web.DemoSlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]web.DemoSlackMessage(nil), s.msgs...)
}
