package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/slack/slacktest"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

const (
	testToken   = "xoxb-111-222-abcdefghijklmnop"
	testSecret  = "8f742231b10e8888abcd99yyyzzz85a5"
	testChannel = "C0ALERTS"
	escChannel  = "C0ESCALATE"
)

// Hostile strings, as an attacker would name a repository, a file, a
// GitHub account, or write next to the secret.
const (
	hostileRepo    = "evil/<!channel>-<@U0BOSS>"
	hostilePath    = "x<https://evil.example/phish|Click to rotate>.env"
	hostileActor   = "<!here> & <!subteam^S1|@security>"
	hostilePreview = "`AKIA****` *bold* <!everyone> https://evil.example/x"
	leakSecret     = "AKIAIOSFODNN7EXAMPLE"
)

type testBundle struct {
	pool   *pgxpool.Pool
	box    *secretbox.Box
	fake   *slacktest.Server
	svc    *Service
	inc    *incidents.Service
	store  *Store
	orgID  int64
	keyID  int64
	userID int64
	synced map[int64]bool
}

// loopbackGuard lets the Slack client reach the fakes on loopback, as
// LEAKWATCH_WEBHOOK_ALLOW_NETS=127.0.0.0/8 does for a deployment.
var loopbackGuard = webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

func setup(t *testing.T) *testBundle { return setupB(t) }

func setupB(t testing.TB) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc, err := jobs.NewClient(pool, jobs.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.Parse("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBundle{pool: pool, box: box, fake: slacktest.New(t, testToken), synced: map[int64]bool{}}
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('acme <b>') RETURNING id`).Scan(&b.orgID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider, environment) VALUES ($1, 'deploy bot', 'lw1:test', 'aws', 'staging') RETURNING id`, b.orgID).Scan(&b.keyID); err != nil {
		t.Fatal(err)
	}
	b.inc = incidents.NewService(pool, rc, logger, incidents.Config{})
	b.store = NewStore(pool, box)
	b.svc = NewService(pool, b.store, rc, b.deps(), Config{APIURL: b.fake.APIURL(), BaseURL: "https://leakwatch.example/", Logger: logger,
		HTTPClient: webhook.NewHTTPClient(loopbackGuard, 10*time.Second)})
	return b
}

// deps are the Service's owners, as serve wires them.
func (b *testBundle) deps() Deps {
	return Deps{Incidents: b.inc, Members: auth.NewStore(b.pool, auth.Config{}), Orgs: orgs.NewStore(b.pool)}
}

func (b *testBundle) connect(t testing.TB, p ConnectParams) {
	t.Helper()
	if p.BotToken == "" {
		p.BotToken = testToken
	}
	if p.SigningSecret == "" {
		p.SigningSecret = testSecret
	}
	if p.DefaultChannel == "" {
		p.DefaultChannel = testChannel
	}
	if err := b.store.Connect(context.Background(), audit.System, b.orgID, p); err != nil {
		t.Fatal(err)
	}
}

func (b *testBundle) member(t *testing.T, email, role string) int64 {
	t.Helper()
	var id int64
	ctx := context.Background()
	if err := b.pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) RETURNING id`, email).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)`, b.orgID, id, role); err != nil {
		t.Fatal(err)
	}
	return id
}

// open records a hostile sighting and returns the incident id.
func (b *testBundle) open(t *testing.T) int64 {
	t.Helper()
	ctx := context.Background()
	f := crawler.Finding{
		KeyID: b.keyID, OrgID: b.orgID, Fingerprint: "lw1:test", Source: "github", EventID: "1", EventType: "PushEvent",
		URL: "https://github.com/evil/repo/blob/abc/x.env#L3", Repo: hostileRepo, Path: hostilePath, Line: 3, Column: 5,
		Encoding: "plain", Actor: hostileActor, Preview: hostilePreview, EventAt: time.Now().Add(-time.Minute), DetectedAt: time.Now(),
	}
	if err := b.inc.Record(ctx, []crawler.Finding{f}); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents WHERE key_id = $1`, b.keyID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// syncNew works the SyncArgs of every timeline entry not synced yet, as
// the hook's jobs would.
func (b *testBundle) syncNew(t *testing.T, incidentID int64) {
	t.Helper()
	for _, id := range b.eventIDs(t, incidentID) {
		if b.synced[id] {
			continue
		}
		if err := b.svc.sync(context.Background(), SyncArgs{IncidentID: incidentID, EventID: id}); err != nil {
			t.Fatalf("sync entry %d: %v", id, err)
		}
		b.synced[id] = true
	}
}

func (b *testBundle) eventIDs(t *testing.T, incidentID int64) []int64 {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT id FROM incident_events WHERE incident_id = $1 ORDER BY id`, incidentID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// texts collects every text of a Block Kit message, decoded.
func texts(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && (k == "text" || k == "url") {
					out = append(out, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

func actionIDs(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var blocks []struct {
		Type     string `json:"type"`
		Elements []struct {
			ActionID string `json:"action_id"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, bl := range blocks {
		if bl.Type == "actions" {
			for _, e := range bl.Elements {
				ids = append(ids, e.ActionID)
			}
		}
	}
	return ids
}

// requireSafe fails if any text carries an injected broadcast, mention or
// link, or the secret.
func requireSafe(t *testing.T, all []string, allowHere bool) {
	t.Helper()
	joined := strings.Join(all, "\n")
	for _, bad := range []string{"<!channel>", "<@U0BOSS>", "<!everyone>", "<!subteam", "<https://evil", "|Click to rotate>", leakSecret, "https://evil"} {
		if strings.Contains(joined, bad) {
			t.Errorf("message carries %q:\n%s", bad, joined)
		}
	}
	if n := strings.Count(joined, "<!here>"); n > 0 && !allowHere {
		t.Errorf("message carries <!here> %d times:\n%s", n, joined)
	}
	for _, s := range all {
		if len([]rune(s)) > 3000 {
			t.Errorf("text of %d runes", len([]rune(s)))
		}
	}
}

func TestLivingMessageThroughLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.connect(t, ConnectParams{})
	uid := b.member(t, "alice@example.com", "responder")
	alice := incidents.Actor{Name: "alice@example.com", UserID: uid, OrgID: b.orgID}
	b.fake.AddUser(slacktest.User{ID: "U0ALICE", Email: "alice@example.com", Name: "Alice"})
	id := b.open(t)
	b.syncNew(t, id)

	top := b.fake.TopLevel(testChannel)
	if len(top) != 1 {
		t.Fatalf("%d top-level messages, want 1", len(top))
	}
	root := top[0]
	all := texts(t, root.Blocks)
	joined := strings.Join(all, "\n")
	for _, want := range []string{"deploy bot", "aws", "staging", "identified", "evil/&lt;!channel&gt;-&lt;@U0BOSS&gt;",
		"<https://github.com/evil/repo/blob/abc/x.env#L3|", ":3>", "&lt;!here&gt; &amp;", "AKIA****", "_unassigned_", "Pushed", "Detected",
		"https://leakwatch.example/incidents#incident-"} {
		if !strings.Contains(joined, want) {
			t.Errorf("alert lacks %q:\n%s", want, joined)
		}
	}
	requireSafe(t, all, false)
	if got := strings.Join(actionIDs(t, root.Blocks), ","); got != "lw_ack,lw_revoke,lw_assign_me,lw_false_positive,lw_open" {
		t.Fatalf("buttons %s", got)
	}
	if !strings.Contains(string(root.Metadata), metaIncident) {
		t.Fatalf("metadata %s", root.Metadata)
	}

	// The whole lifecycle: each step a threaded reply, the message updated.
	steps := []func() error{
		func() error { return b.inc.Acknowledge(ctx, id, alice) },
		func() error { return b.inc.Assign(ctx, id, uid, alice) },
		func() error { return b.inc.AddNote(ctx, id, alice, "rotating now <!channel>") },
		func() error { return b.inc.MarkContained(ctx, id, alice, "disabled in IAM") },
		func() error { return b.inc.KeyRotated(ctx, b.keyID) },
		func() error { return b.inc.ConfirmRecovery(ctx, id, alice, "deployed") },
		func() error {
			return b.inc.Close(ctx, id, alice, incidents.Review{RootCause: "env file", LeakVector: "public repo", FollowUps: "pre-commit hook"})
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		b.syncNew(t, id)
	}
	if n := len(b.fake.TopLevel(testChannel)); n != 1 {
		t.Fatalf("%d top-level messages after the lifecycle, want 1", n)
	}
	events := len(b.eventIDs(t, id))
	replies := b.fake.Replies(testChannel, root.TS)
	if len(replies) != events-1 {
		t.Fatalf("%d threaded replies for %d timeline entries after the opening", len(replies), events)
	}
	var replyTexts []string
	for _, r := range replies {
		replyTexts = append(replyTexts, r.Text)
	}
	requireSafe(t, replyTexts, false)
	for _, want := range []string{"Acknowledged by alice@example.com", "Assigned", "rotating now &lt;!channel&gt;", "Key rotated", "Closed"} {
		if !strings.Contains(strings.Join(replyTexts, "\n"), want) {
			t.Errorf("replies lack %q:\n%s", want, strings.Join(replyTexts, "\n"))
		}
	}
	final := b.fake.TopLevel(testChannel)[0]
	if final.Updates != len(steps) && final.Updates < len(steps) {
		t.Fatalf("message updated %d times, want ≥ %d", final.Updates, len(steps))
	}
	fj := strings.Join(texts(t, final.Blocks), "\n")
	// The assignee is mentioned by the Slack id users.lookupByEmail gave.
	for _, want := range []string{"closed", "<@U0ALICE> (alice@example.com)"} {
		if !strings.Contains(fj, want) {
			t.Errorf("final message lacks %q:\n%s", want, fj)
		}
	}
	if got := strings.Join(actionIDs(t, final.Blocks), ","); got != "lw_open" {
		t.Fatalf("closed incident buttons %s, want only the link", got)
	}

	// Replaying every job (River retries, duplicates) posts nothing new.
	posts := b.fake.Calls("chat.postMessage")
	b.synced = map[int64]bool{}
	b.syncNew(t, id)
	if got := b.fake.Calls("chat.postMessage"); got != posts {
		t.Fatalf("replay posted %d more messages", got-posts)
	}
}

func TestNoDuplicateAfterCrashBetweenPostAndCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.connect(t, ConnectParams{})
	uid := b.member(t, "alice@example.com", "responder")
	id := b.open(t)
	crash := map[string]bool{"root": true, "reply": true}
	var mu sync.Mutex
	b.svc.afterPost = func(what string) error {
		mu.Lock()
		defer mu.Unlock()
		if crash[what] {
			crash[what] = false
			return errors.New("worker killed")
		}
		return nil
	}
	evs := b.eventIDs(t, id)
	if err := b.svc.sync(ctx, SyncArgs{IncidentID: id, EventID: evs[0]}); err == nil {
		t.Fatal("the simulated crash did not fail the job")
	}
	if err := b.svc.sync(ctx, SyncArgs{IncidentID: id, EventID: evs[0]}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	top := b.fake.TopLevel(testChannel)
	if len(top) != 1 {
		t.Fatalf("%d alerts after a crash and a retry, want 1", len(top))
	}
	if err := b.inc.Acknowledge(ctx, id, incidents.Actor{Name: "alice@example.com", UserID: uid, OrgID: b.orgID}); err != nil {
		t.Fatal(err)
	}
	evs = b.eventIDs(t, id)
	last := evs[len(evs)-1]
	if err := b.svc.sync(ctx, SyncArgs{IncidentID: id, EventID: last}); err == nil {
		t.Fatal("the simulated crash did not fail the reply job")
	}
	if err := b.svc.sync(ctx, SyncArgs{IncidentID: id, EventID: last}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(b.fake.Replies(testChannel, top[0].TS)); n != 1 {
		t.Fatalf("%d replies after a crash and a retry, want 1", n)
	}
	var ts string
	if err := b.pool.QueryRow(ctx, `SELECT ts FROM slack_messages WHERE incident_id = $1`, id).Scan(&ts); err != nil || ts != top[0].TS {
		t.Fatalf("recorded ts %q (%v), posted %q", ts, err, top[0].TS)
	}
}

func TestRateLimitOutageAndRevokedToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.connect(t, ConnectParams{})
	id := b.open(t)
	ev := b.eventIDs(t, id)[0]

	b.fake.RateLimit("chat.postMessage", 1, 7)
	err := b.svc.sync(ctx, SyncArgs{IncidentID: id, EventID: ev})
	var snooze *river.JobSnoozeError
	if !errors.As(err, &snooze) || snooze.Duration != 7*time.Second {
		t.Fatalf("429: got %v, want a 7s snooze", err)
	}
	b.fake.Fail("chat.postMessage", 1)
	err = b.svc.sync(ctx, SyncArgs{IncidentID: id, EventID: ev})
	if err == nil || errors.As(err, &snooze) {
		t.Fatalf("outage: got %v, want an error for River's backoff", err)
	}
	if err := b.svc.sync(ctx, SyncArgs{IncidentID: id, EventID: ev}); err != nil {
		t.Fatal(err)
	}
	if n := len(b.fake.TopLevel(testChannel)); n != 1 {
		t.Fatalf("%d alerts after 429, 500 and success, want 1", n)
	}

	b.fake.RevokeToken(testToken)
	if err := b.inc.AddNote(ctx, id, incidents.System, "hello"); err != nil {
		t.Fatal(err)
	}
	evs := b.eventIDs(t, id)
	err = b.svc.sync(ctx, SyncArgs{IncidentID: id, EventID: evs[len(evs)-1]})
	var cancel *river.JobCancelError
	if !errors.As(err, &cancel) {
		t.Fatalf("revoked token: got %v, want the job cancelled", err)
	}
	conn, err := b.store.Connection(ctx, b.orgID)
	if err != nil || conn.BrokenAt == nil || conn.BrokenReason != "token_revoked" {
		t.Fatalf("connection %+v, %v: want broken by token_revoked", conn.BrokenAt, err)
	}
	// Reconnecting with a working token clears the mark.
	b.connect(t, ConnectParams{BotToken: "xoxb-333-444-newtokenabcdefgh"})
	if conn, _ := b.store.Connection(ctx, b.orgID); conn.BrokenAt != nil {
		t.Fatal("still broken after reconnecting")
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("critical mentions here in its channel; escalations cross-post", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.connect(t, ConnectParams{EscalationChannel: escChannel, Routes: map[string]Route{"critical": {Channel: "C0CRIT", Mention: "here"}}})
		id := b.open(t)
		if _, err := b.pool.Exec(ctx, `UPDATE incidents SET severity = 'critical' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		b.syncNew(t, id)
		top := b.fake.TopLevel("C0CRIT")
		if len(top) != 1 || len(b.fake.TopLevel(testChannel)) != 0 {
			t.Fatalf("critical alert not routed: %d in C0CRIT", len(top))
		}
		all := texts(t, top[0].Blocks)
		if n := strings.Count(strings.Join(all, "\n"), "<!here>"); n != 1 {
			t.Fatalf("<!here> %d times, want exactly our own", n)
		}
		requireSafe(t, all, true)
		// An escalation: a reply in the thread and a post in the escalation channel.
		if _, err := b.pool.Exec(ctx, `INSERT INTO incident_events (incident_id, actor, kind, details) VALUES ($1, 'system', 'escalated', '{"reason":"not acknowledged"}')`, id); err != nil {
			t.Fatal(err)
		}
		b.syncNew(t, id)
		if n := len(b.fake.Replies("C0CRIT", top[0].TS)); n != 1 {
			t.Fatalf("%d replies", n)
		}
		esc := b.fake.TopLevel(escChannel)
		if len(esc) != 1 || !strings.Contains(esc[0].Text, "Escalation") {
			t.Fatalf("escalation channel: %+v", esc)
		}
	})

	t.Run("low goes to the digest only", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.connect(t, ConnectParams{Routes: map[string]Route{"low": {DigestOnly: true}}})
		id := b.open(t)
		if _, err := b.pool.Exec(ctx, `UPDATE incidents SET severity = 'low' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		b.syncNew(t, id)
		if n := b.fake.Calls("chat.postMessage"); n != 0 {
			t.Fatalf("%d posts for a digest-only severity", n)
		}
	})
}

// TestIncomingWebhook alerts through an organisation's incoming webhook,
// whether its URL was stored in plaintext (set before encryption, or with
// no key configured) or sealed.
func TestIncomingWebhook(t *testing.T) {
	t.Parallel()
	for _, sealed := range []bool{false, true} {
		t.Run(fmt.Sprintf("sealed=%v", sealed), func(t *testing.T) {
			t.Parallel()
			testIncomingWebhook(t, sealed)
		})
	}
}

func testIncomingWebhook(t *testing.T, sealed bool) {
	ctx := context.Background()
	b := setup(t)
	var mu sync.Mutex
	var bodies []string
	down := true
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		bodies = append(bodies, string(body))
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(hook.Close)
	hookURL := hook.URL + "/services/T/B/X"
	if sealed {
		if err := orgs.NewStore(b.pool).WithBox(b.box).SetSlackWebhook(ctx, audit.System, b.orgID, hookURL); err != nil {
			t.Fatal(err)
		}
	} else if _, err := b.pool.Exec(ctx, `UPDATE orgs SET slack_webhook_url = $1 WHERE id = $2`, hookURL, b.orgID); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := b.pool.QueryRow(ctx, `SELECT slack_webhook_url FROM orgs WHERE id = $1`, b.orgID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if secretbox.Sealed(stored) != sealed || sealed && strings.Contains(stored, "/services/") {
		t.Fatalf("stored webhook URL %.24q, want sealed %v", stored, sealed)
	}
	id := b.open(t)
	// Slack down: the job fails for River to retry, and the error does not
	// carry the webhook URL (a secret).
	err := b.svc.sync(ctx, SyncArgs{IncidentID: id, EventID: b.eventIDs(t, id)[0]})
	if err == nil || strings.Contains(err.Error(), hook.URL) || strings.Contains(err.Error(), "/services/") {
		t.Fatalf("webhook down: %v", err)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	b.syncNew(t, id)
	if err := b.inc.Acknowledge(ctx, id, incidents.System); err != nil {
		t.Fatal(err)
	}
	b.syncNew(t, id)
	b.synced = map[int64]bool{}
	b.syncNew(t, id) // replays post nothing
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("%d webhook posts, want only the alert", len(bodies))
	}
	var msg struct {
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &msg); err != nil {
		t.Fatal(err)
	}
	all := texts(t, msg.Blocks)
	requireSafe(t, all, false)
	if ids := actionIDs(t, msg.Blocks); strings.Join(ids, ",") != "lw_open" {
		t.Fatalf("webhook message buttons %v, want only the link", ids)
	}
	if !strings.Contains(strings.Join(all, "\n"), "deploy bot") {
		t.Fatal("alert lacks the key name")
	}
}

func TestEscape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"<!channel>", "&lt;!channel&gt;"},
		{"<@U123|boss>", "&lt;@U123|boss&gt;"},
		{"a & b", "a &amp; b"},
		{"<https://evil|x>", "&lt;https:\u200b//evil|x&gt;"},
		{"line1\nline2", "line1 line2"},
		{"\xff\xfeok", "ok"},
	} {
		if got := Escape(tc.in, 0); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 1000)
	if got := Escape(long, 0); len([]rune(got)) != MaxField+1 || !strings.HasSuffix(got, "…") {
		t.Errorf("long value: %d runes", len([]rune(got)))
	}
}

// TestSeverityRaisedText: a raised severity reads as such, with both
// levels, in a thread reply and as an incoming-webhook post.
func TestSeverityRaisedText(t *testing.T) {
	t.Parallel()
	e := event{Kind: "severity_raised", Details: map[string]any{"from": "medium", "to": "critical", "url": "https://github.com/o/r/issues/1", "reach": 4200}}
	got := eventText(view{}, e)
	for _, want := range []string{"Severity raised", "medium → *critical*", "https://github.com/o/r/issues/1"} {
		if !strings.Contains(got, want) {
			t.Errorf("text lacks %q:\n%s", want, got)
		}
	}
	if !webhookKinds["severity_raised"] {
		t.Error("an incoming webhook would not post a raised severity")
	}
}
