package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/incidents/slack/slacktest"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

const (
	itToken  = "xoxb-999-888-integrationtoken1234"
	itSecret = "integration-signing-secret-0001"
)

// withIntegrations gives the test server a Slack service (on a fake Slack)
// and event webhooks.
func withIntegrations(t *testing.T, b *testBundle) *slacktest.Server {
	t.Helper()
	fake := slacktest.New(t, itToken)
	box, err := secretbox.Parse("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger})
	if err != nil {
		t.Fatal(err)
	}
	inc := incidents.NewService(b.pool, rc, b.logger, incidents.Config{})
	b.srv.slack = slack.NewService(b.pool, slack.NewStore(b.pool, box), rc,
		slack.Deps{Incidents: inc, Members: b.auth, Orgs: b.orgs}, slack.Config{APIURL: fake.APIURL(), Logger: b.logger,
			HTTPClient: webhook.NewHTTPClient(webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, 10*time.Second)})
	b.srv.eventHooks = eventhooks.NewStore(b.pool, box)
	return fake
}

// workSlackTest works the newest queued Slack test message, as the
// notify queue's worker does (the test server inserts jobs, works none).
func workSlackTest(t *testing.T, b *testBundle) {
	t.Helper()
	var a slack.TestArgs
	if err := b.pool.QueryRow(context.Background(), `SELECT args FROM river_job WHERE kind = 'slack_test' ORDER BY id DESC LIMIT 1`).Scan(&a); err != nil {
		t.Fatalf("no queued Slack test: %v", err)
	}
	if err := b.srv.slack.SendTest(context.Background(), a.OrgID, a.RequestedBy); err != nil {
		t.Fatal(err)
	}
}

func TestSlackIntegrationAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fake := withIntegrations(t, b)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "viewer@acme.example", org.ID, auth.RoleViewer)
	admin := b.signIn(t, "admin@acme.example")
	viewer := b.signIn(t, "viewer@acme.example")

	var conn slackConnectionJSON
	admin.mustJSON(http.MethodGet, "/api/v1/integrations/slack", nil, http.StatusOK, &conn)
	if conn.Mode != "none" || conn.InteractivityURL != fmt.Sprintf("http://leakwatch.test/slack/interactions/%d", org.ID) {
		t.Fatalf("unconnected: %+v", conn)
	}
	if st, body := admin.do(http.MethodPost, "/api/v1/integrations/slack/test", nil); st != http.StatusConflict || errorCode(t, body) != "not_connected" {
		t.Fatalf("test unconnected = %d %s", st, body)
	}
	req := map[string]any{"bot_token": itToken, "signing_secret": itSecret, "default_channel": "C0ALERTS",
		"escalation_channel": "C0ESC", "routes": map[string]any{"low": map[string]any{"digest_only": true}}}
	if st, _ := viewer.do(http.MethodPut, "/api/v1/integrations/slack", req); st != http.StatusForbidden {
		t.Fatalf("viewer connect = %d", st)
	}
	if st, body := admin.do(http.MethodPut, "/api/v1/integrations/slack", map[string]any{"bot_token": "nope", "signing_secret": itSecret, "default_channel": "C0ALERTS"}); st != http.StatusBadRequest {
		t.Fatalf("bad token = %d %s", st, body)
	}
	st, body := admin.do(http.MethodPut, "/api/v1/integrations/slack", req)
	if st != http.StatusOK {
		t.Fatalf("connect = %d %s", st, body)
	}
	if strings.Contains(string(body), itToken) || strings.Contains(string(body), itSecret) {
		t.Fatalf("secret shown back: %s", body)
	}
	if err := json.Unmarshal(body, &conn); err != nil || conn.Mode != "bot" || conn.TokenHint != "…1234" || !conn.SigningSecretSet || !conn.Routes["low"].DigestOnly {
		t.Fatalf("connected: %+v %v", conn, err)
	}
	var stored string
	if err := b.pool.QueryRow(context.Background(), `SELECT bot_token || signing_secret FROM slack_connections`).Scan(&stored); err != nil ||
		strings.Contains(stored, itToken) || strings.Contains(stored, itSecret) {
		t.Fatalf("secrets stored in the clear (%v)", err)
	}
	admin.mustJSON(http.MethodPost, "/api/v1/integrations/slack/test", nil, http.StatusAccepted, nil)
	// The answer is only "queued"; the queued job sends the message.
	var testArgs slack.TestArgs
	if err := b.pool.QueryRow(context.Background(), `SELECT args FROM river_job WHERE kind = 'slack_test' ORDER BY id DESC LIMIT 1`).Scan(&testArgs); err != nil || testArgs.OrgID != org.ID {
		t.Fatalf("test job %+v (%v)", testArgs, err)
	}
	if err := b.srv.slack.SendTest(context.Background(), testArgs.OrgID, testArgs.RequestedBy); err != nil {
		t.Fatal(err)
	}
	if top := fake.TopLevel("C0ALERTS"); len(top) != 1 || !strings.Contains(top[0].Text, "admin@acme.example") {
		t.Fatalf("test message %+v", top)
	}
	var actions []string
	rows, err := b.pool.Query(context.Background(), `SELECT action FROM audit_log WHERE org_id = $1 ORDER BY id`, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		_ = rows.Scan(&a)
		actions = append(actions, a)
	}
	rows.Close()
	if got := strings.Join(actions, ","); !strings.Contains(got, "slack.connect,slack.test") {
		t.Fatalf("audit %s", got)
	}

	// The interactivity endpoint: signed by the app, for this organisation.
	payload, _ := json.Marshal(map[string]any{"type": "block_actions", "user": map[string]any{"id": "U1"}, "channel": map[string]any{"id": "C0ALERTS"},
		"actions": []map[string]any{{"type": "button", "action_id": slack.ActionAcknowledge, "block_id": "lw_incident_1", "value": "1", "action_ts": "1.1"}}})
	form := "payload=" + url.QueryEscape(string(payload))
	post := func(secret, path string, at time.Time, body string) int {
		ts := strconv.FormatInt(at.Unix(), 10)
		mac := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(mac, "v0:%s:%s", ts, form)
		r, _ := http.NewRequest(http.MethodPost, b.ts.URL+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Slack-Request-Timestamp", ts)
		r.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
		return resp.StatusCode
	}
	path := fmt.Sprintf("/slack/interactions/%d", org.ID)
	start := time.Now()
	if got := post(itSecret, path, time.Now(), form); got != http.StatusOK {
		t.Fatalf("signed click = %d", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("answered in %v, past Slack's 3 s", d)
	}
	for name, got := range map[string]int{
		"tampered":     post(itSecret, path, time.Now(), strings.Replace(form, "lw_ack", "lw_revoke", 1)),
		"stale":        post(itSecret, path, time.Now().Add(-10*time.Minute), form),
		"wrong secret": post("another-secret-000000000000", path, time.Now(), form),
		"other org":    post(itSecret, "/slack/interactions/999999", time.Now(), form),
	} {
		if got != http.StatusUnauthorized {
			t.Errorf("%s click = %d, want 401", name, got)
		}
	}

	var queued int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'slack_action'`).Scan(&queued); err != nil || queued != 1 {
		t.Fatalf("%d clicks queued (%v), want only the signed one", queued, err)
	}

	admin.mustJSON(http.MethodDelete, "/api/v1/integrations/slack", nil, http.StatusNoContent, nil)
	admin.mustJSON(http.MethodGet, "/api/v1/integrations/slack", nil, http.StatusOK, &conn)
	if conn.Mode != "none" {
		t.Fatalf("after disconnect: %+v", conn)
	}
}

func TestWebhookSubscriptionAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	withIntegrations(t, b)
	org := b.mustOrg(t, "acme")
	other := b.mustOrg(t, "other")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "admin@other.example", other.ID, auth.RoleAdmin)
	b.mustUser(t, "resp@acme.example", org.ID, auth.RoleResponder)
	admin, otherAdmin, responder := b.signIn(t, "admin@acme.example"), b.signIn(t, "admin@other.example"), b.signIn(t, "resp@acme.example")

	var created webhookSubscriptionCreated
	admin.mustJSON(http.MethodPost, "/api/v1/integrations/webhooks",
		map[string]any{"url": "https://siem.example/hook?token=abc", "events": []string{"incident.opened"}}, http.StatusCreated, &created)
	if created.ID == 0 || !strings.HasPrefix(created.Secret, "whsec_") || created.Events[0] != "incident.opened" {
		t.Fatalf("created %+v", created)
	}
	if st, body := admin.do(http.MethodPost, "/api/v1/integrations/webhooks", map[string]any{"url": "https://x.example", "events": []string{"nope"}}); st != http.StatusBadRequest {
		t.Fatalf("unknown event = %d %s", st, body)
	}
	if st, _ := responder.do(http.MethodGet, "/api/v1/integrations/webhooks", nil); st != http.StatusForbidden {
		t.Fatalf("responder list = %d", st)
	}
	var list struct {
		Items []eventhooks.Subscription `json:"items"`
	}
	admin.mustJSON(http.MethodGet, "/api/v1/integrations/webhooks", nil, http.StatusOK, &list)
	if len(list.Items) != 1 {
		t.Fatalf("list %+v", list)
	}
	_, raw := admin.do(http.MethodGet, "/api/v1/integrations/webhooks", nil)
	if strings.Contains(string(raw), created.Secret) {
		t.Fatal("list shows the secret")
	}
	otherAdmin.mustJSON(http.MethodGet, "/api/v1/integrations/webhooks", nil, http.StatusOK, &list)
	if len(list.Items) != 0 {
		t.Fatalf("another org sees %+v", list)
	}
	if st, _ := otherAdmin.do(http.MethodDelete, fmt.Sprintf("/api/v1/integrations/webhooks/%d", created.ID), nil); st != http.StatusNotFound {
		t.Fatalf("cross-org delete = %d", st)
	}
	var details string
	if err := b.pool.QueryRow(context.Background(), `SELECT details::text FROM audit_log WHERE action = 'webhook.subscribe'`).Scan(&details); err != nil ||
		strings.Contains(details, "token=abc") {
		t.Fatalf("audit details %s (%v)", details, err)
	}
	admin.mustJSON(http.MethodDelete, fmt.Sprintf("/api/v1/integrations/webhooks/%d", created.ID), nil, http.StatusNoContent, nil)
}

// TestIncidentPageEscapesLeakText feeds attacker-controlled text through the
// HTML templates.
func TestIncidentPageEscapesLeakText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "viewer@acme.example", org.ID, auth.RoleViewer)
	var keyID int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, '<img src=x onerror=alert(1)>', 'lw1:x', 'aws') RETURNING id`, org.ID).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	inc := incidents.NewService(b.pool, nil, b.logger, incidents.Config{})
	if err := inc.Record(ctx, []crawler.Finding{{KeyID: keyID, OrgID: org.ID, Fingerprint: "lw1:x", Source: "github", EventID: "1",
		URL: `javascript:alert(1)//"><script>alert(2)</script>`, Repo: "<script>alert(3)</script>", Actor: "<!channel>", DetectedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	c := b.signIn(t, "viewer@acme.example")
	st, page := c.do(http.MethodGet, "/incidents", nil)
	if st != http.StatusOK {
		t.Fatalf("incidents page = %d", st)
	}
	for _, bad := range []string{"<script>", "<img src=x", `href="javascript:`} {
		if strings.Contains(string(page), bad) {
			t.Errorf("page carries %q", bad)
		}
	}
	if !strings.Contains(string(page), "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("key name not shown escaped")
	}
}
