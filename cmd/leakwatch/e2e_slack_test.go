package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/incidents/slack/slacktest"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/matcher"
)

// TestEndToEndSlack runs the real wiring against a fake Slack with a
// bot-token connection: a leak opens an incident, its living message
// appears with buttons, a signed Acknowledge click from a responder is
// answered at once and acted on by a job, and the message is updated in
// place with the acknowledgement threaded under it.
func TestEndToEndSlack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	const (
		encKey  = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		token   = "xoxb-e2e-0000-slacktokenabcdef"
		signing = "e2e-signing-secret-000000000"
		channel = "C0SECINC"
	)
	fake := slacktest.New(t, token)
	fake.AddUser(slacktest.User{ID: "U0ALICE", Email: "alice@acme.example", Name: "Alice"})
	box, err := secretbox.Parse(encKey)
	if err != nil {
		t.Fatal(err)
	}
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := slack.NewStore(pool, box).Connect(ctx, audit.CLI, org.ID, slack.ConnectParams{BotToken: token, SigningSecret: signing, DefaultChannel: channel}); err != nil {
		t.Fatal(err)
	}
	as := auth.NewStore(pool, auth.Config{})
	alice, _, err := as.EnsureUser(ctx, audit.System, "alice@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := as.AddMember(ctx, audit.System, org.ID, alice.ID, auth.RoleResponder); err != nil {
		t.Fatal(err)
	}
	secret := randomToken(t, "ghp_", 36)
	fp, err := matcher.Compute([]byte(secret), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.NewStore(pool).Add(ctx, audit.System, org.ID, "deploy-bot token", fp); err != nil {
		t.Fatal(err)
	}
	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPollInterval(1)
	// An unregistered secret shares the registered token's line: the
	// preview must mask it too (issue 14: an AWS secret key went verbatim
	// into the database, the alert and the dashboard).
	awsSecret := randomToken(t, "", 20) + "/" + randomToken(t, "", 19)
	gh.Publish(githubtest.CommentEvent(27244207336, "octo-org/<!channel>", "mallory",
		"here is my config:\n```\nexport GITHUB_TOKEN=\""+secret+"\" AWS_SECRET_ACCESS_KEY="+awsSecret+"\n```\n", time.Now().Add(-time.Minute)))

	env := map[string]string{
		"DATABASE_URL":                       dbURL,
		"LEAKWATCH_BASE_URL":                 "https://leakwatch.example",
		"LEAKWATCH_GITHUB_API_URL":           gh.APIURL(),
		"LEAKWATCH_WEBHOOK_ALLOW_NETS":       "127.0.0.0/8", // the fakes are on loopback
		"LEAKWATCH_GITHUB_TOKENS":            "test-token-1",
		"LEAKWATCH_GITHUB_MIN_POLL_INTERVAL": "100ms",
		"LEAKWATCH_KEY_RELOAD_INTERVAL":      "1s",
		"LEAKWATCH_ENCRYPTION_KEY":           encKey,
		"LEAKWATCH_SLACK_API_URL":            fake.APIURL(),
	}
	svc := startService(t, env)

	eventually(t, "the living Slack message", 30*time.Second, func() bool { return len(fake.TopLevel(channel)) == 1 })
	root := fake.TopLevel(channel)[0]
	blocks := string(root.Blocks)
	// The GitHub token was revoked at match time: contained, so no "Revoke now".
	for _, want := range []string{"deploy-bot token", "lw_ack", "lw_assign_me", "lw_false_positive", "contained",
		"https://leakwatch.example/incidents#incident-"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("alert lacks %q", want)
		}
	}
	if strings.Contains(blocks, secret[4:20]) || strings.Contains(blocks, "<!channel>") || strings.Contains(blocks, `\u003c!channel\u003e`) {
		t.Fatalf("alert carries the secret or an injected broadcast: %s", blocks)
	}
	if !strings.Contains(blocks, "AWS_SECRET_ACCESS_KEY") || strings.Contains(blocks, awsSecret[:12]) || strings.Contains(blocks, awsSecret[21:33]) {
		t.Fatalf("alert's preview lacks the line or carries the unregistered AWS secret: %s", blocks)
	}
	// river_job is left out: the GitHub events job carries the public
	// event as GitHub served it, text included, until River prunes it
	// (reported to the lead; not the preview's doing).
	if dump := dumpDatabase(t, pool, "river_job"); strings.Contains(dump, awsSecret[:12]) || strings.Contains(dump, awsSecret[21:33]) || strings.Contains(dump, secret[4:20]) {
		t.Fatal("a table holds the secrets found on the leaked line")
	}
	var incidentID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&incidentID); err != nil {
		t.Fatal(err)
	}

	// Alice clicks Acknowledge.
	payload, _ := json.Marshal(map[string]any{"type": "block_actions", "user": map[string]any{"id": "U0ALICE"},
		"channel": map[string]any{"id": channel}, "actions": []map[string]any{{"type": "button", "action_id": slack.ActionAcknowledge,
			"block_id": fmt.Sprintf("lw_incident_%d", incidentID), "value": strconv.FormatInt(incidentID, 10), "action_ts": "1700000000.000001"}}})
	body := "payload=" + url.QueryEscape(string(payload))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(signing))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/slack/interactions/%d", svc.Base, org.ID), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || time.Since(start) > 3*time.Second {
		t.Fatalf("click answered %d after %v", resp.StatusCode, time.Since(start))
	}
	eventually(t, "the acknowledgement", 30*time.Second, func() bool {
		var by string
		_ = pool.QueryRow(ctx, `SELECT acknowledged_by FROM incidents WHERE id = $1`, incidentID).Scan(&by)
		return by == "alice@acme.example"
	})
	eventually(t, "the threaded reply and the update", 30*time.Second, func() bool {
		for _, r := range fake.Replies(channel, root.TS) {
			if strings.Contains(r.Text, "Acknowledged by alice@acme.example") {
				m := fake.TopLevel(channel)[0]
				return m.Updates > 0 && strings.Contains(string(m.Blocks), "Acknowledged by alice@acme.example")
			}
		}
		return false
	})
	if n := len(fake.TopLevel(channel)); n != 1 {
		t.Fatalf("%d top-level messages, want one living message", n)
	}
	svc.Stop(t)
}
