package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// receiver is a customer's endpoint on loopback: it keeps what it got.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newReceiver(t *testing.T, reply string) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.mu.Unlock()
		io.WriteString(w, reply) //nolint:errcheck
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// formPage posts a form and returns the page it answers with.
func formPage(t *testing.T, c *client, path string, values map[string]string) (int, string) {
	t.Helper()
	form := url.Values{"csrf_token": {c.csrf}}
	for k, v := range values {
		form.Set(k, v)
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// formResult posts a form and returns where it went: the notice or the
// error of a redirect back, else the status.
func formResult(t *testing.T, c *client, path string, values map[string]string) string {
	t.Helper()
	resp := c.form(path, values)
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Sprint(resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if e := u.Query().Get("error"); e != "" {
		return "error: " + e
	}
	return u.Query().Get("notice")
}

// TestIntegrationsPageForms works every form of /integrations: Slack by
// incoming webhook and by bot (with test messages that really arrive),
// disconnecting; event webhooks (secret once, delivery log, delete);
// revocation endpoints (default and per key, HMAC secret once, removal).
// Viewers get neither page nor forms; hostile names and replies render as
// text; another organisation sees nothing.
func TestIntegrationsPageForms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	fake := withIntegrations(t, b)
	org, other := b.mustOrg(t, "acme"), b.mustOrg(t, "other")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "viewer@acme.example", org.ID, auth.RoleViewer)
	b.mustUser(t, "admin@other.example", other.ID, auth.RoleAdmin)
	admin, viewer, outsider := b.signIn(t, "admin@acme.example"), b.signIn(t, "viewer@acme.example"), b.signIn(t, "admin@other.example")
	page := func(c *client, path string) string {
		t.Helper()
		st, body := c.do(http.MethodGet, path, nil)
		if st != http.StatusOK {
			t.Fatalf("GET %s = %d", path, st)
		}
		return string(body)
	}

	// Viewers: no page, no forms.
	if st, _ := viewer.do(http.MethodGet, "/integrations", nil); st != http.StatusForbidden {
		t.Fatalf("viewer page = %d", st)
	}
	for _, p := range []string{"/integrations/webhooks", "/integrations/slack/bot", "/integrations/revocation", "/integrations/slack/disconnect"} {
		if got := formResult(t, viewer, p, map[string]string{"url": "https://x.example/h", "key": "default"}); got != "403" {
			t.Errorf("viewer POST %s = %s", p, got)
		}
	}

	// Slack by incoming webhook; the test message reaches it.
	hook := newReceiver(t, "ok")
	if got := formResult(t, admin, "/integrations/slack/webhook", map[string]string{"webhook_url": hook.URL + "/services/T0/B0/secretpath"}); !strings.HasPrefix(got, "Slack incoming webhook saved") {
		t.Fatalf("save webhook: %s", got)
	}
	if body := page(admin, "/integrations"); !strings.Contains(body, `id="slack-mode">webhook<`) || strings.Contains(body, "secretpath") {
		t.Fatalf("webhook mode not shown, or its URL shown")
	}
	if got := formResult(t, admin, "/integrations/slack/test", nil); got != slackTestQueued {
		t.Fatalf("test by webhook: %s", got)
	}
	workSlackTest(t, b)
	if got := hook.got(); len(got) != 1 || !strings.Contains(got[0], "admin@acme.example") {
		t.Fatalf("webhook received %q", got)
	}

	// Slack by bot: a bad token is refused with a message, a good one
	// connects and the test message reaches the channel.
	if got := formResult(t, admin, "/integrations/slack/bot", map[string]string{"bot_token": "nope", "signing_secret": itSecret, "default_channel": "C0ALERTS"}); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("bad bot token: %s", got)
	}
	if got := formResult(t, admin, "/integrations/slack/bot", map[string]string{"bot_token": itToken, "signing_secret": itSecret, "default_channel": "C0ALERTS"}); !strings.HasPrefix(got, "Slack bot connected") {
		t.Fatalf("connect bot: %s", got)
	}
	body := page(admin, "/integrations")
	if !strings.Contains(body, `id="slack-mode">bot<`) || strings.Contains(body, itToken) || strings.Contains(body, itSecret) {
		t.Fatal("bot mode not shown, or a secret shown")
	}
	if got := formResult(t, admin, "/integrations/slack/test", nil); got != slackTestQueued {
		t.Fatalf("test by bot: %s", got)
	}
	workSlackTest(t, b)
	if top := fake.TopLevel("C0ALERTS"); len(top) != 1 {
		t.Fatalf("bot test messages %+v", top)
	}
	for _, a := range []string{`action="/integrations/slack/disconnect" data-confirm="`, `action="/integrations/slack/webhook/remove" data-confirm="`} {
		if !strings.Contains(body, a) {
			t.Errorf("no confirmation: %s", a)
		}
	}
	if got := formResult(t, admin, "/integrations/slack/disconnect", nil); got != "Slack bot disconnected." {
		t.Fatalf("disconnect: %s", got)
	}
	if got := formResult(t, admin, "/integrations/slack/webhook/remove", nil); got != "Slack incoming webhook removed." {
		t.Fatalf("remove webhook: %s", got)
	}
	if body := page(admin, "/integrations"); !strings.Contains(body, `id="slack-mode">none<`) {
		t.Fatal("still connected after disconnecting both")
	}

	// Event webhooks: the secret on the creating response only, never the
	// URL's token.
	st, once := formPage(t, admin, "/integrations/webhooks", map[string]string{"url": "https://siem.example/hook?token=abc", "events": "incident.opened"})
	if st != http.StatusOK || !strings.Contains(once, `<code id="secret-value">whsec_`) {
		t.Fatalf("create = %d without the secret", st)
	}
	_, created := admin.do(http.MethodGet, "/integrations", nil) // the list, without the secret
	if strings.Contains(string(created), "whsec_") || strings.Contains(string(created), "token=abc") || !strings.Contains(string(created), "siem.example") {
		t.Fatal("the list shows a secret or a token, or misses the host")
	}
	var hookID int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM event_webhooks WHERE org_id = $1`, org.ID).Scan(&hookID); err != nil {
		t.Fatal(err)
	}
	if got := formResult(t, admin, "/integrations/webhooks", map[string]string{"url": "https://x.example", "events": "nope"}); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("unknown event: %s", got)
	}
	logPath := fmt.Sprintf("/integrations/webhooks/%d", hookID)
	if body := page(admin, logPath); !strings.Contains(body, `id="no-deliveries"`) {
		t.Fatal("empty delivery log")
	}
	// A delivery with two attempts, the receiver's reply hostile.
	d, err := webhook.EnsureDelivery(ctx, b.pool, webhook.Delivery{MessageID: "msg_test_1", Kind: "event", EndpointID: &hookID, URL: "https://siem.example/hook?token=abc", Payload: []byte(`{}`), CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []webhook.Result{{StatusCode: 500, Body: []byte("<script>alert(1)</script>")}, {StatusCode: 204}} {
		status := webhook.StatusPending
		if r.StatusCode == 204 {
			status = webhook.StatusSucceeded
		}
		if err := webhook.RecordAttempt(ctx, b.pool, d.ID, time.Now(), r, status); err != nil {
			t.Fatal(err)
		}
	}
	body = page(admin, logPath)
	if !strings.Contains(body, "HTTP 500") || !strings.Contains(body, "HTTP 204") || !strings.Contains(body, "succeeded") ||
		strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;") || strings.Contains(body, "token=abc") {
		t.Fatalf("delivery log:\n%s", body)
	}
	if st, _ := viewer.do(http.MethodGet, logPath, nil); st != http.StatusForbidden {
		t.Fatalf("viewer delivery log = %d", st)
	}
	// Every destructive form asks first.
	for _, action := range []string{`action="` + logPath + `/delete"`} {
		if !regexp.MustCompile(`<form method="post" ` + regexp.QuoteMeta(action) + ` data-confirm="[^"]+"`).MatchString(page(admin, "/integrations")) {
			t.Errorf("%s does not ask for confirmation", action)
		}
	}
	if st, _ := outsider.do(http.MethodGet, logPath, nil); st != http.StatusNotFound {
		t.Fatalf("another org's delivery log = %d", st)
	}
	if got := formResult(t, outsider, logPath+"/delete", nil); got != "404" {
		t.Fatalf("another org's delete = %s", got)
	}
	if got := formResult(t, admin, logPath+"/delete", nil); got != "Subscription deleted." {
		t.Fatalf("delete: %s", got)
	}

	// Revocation endpoints: the default with HMAC (secret once), one for a
	// key with a hostile name, removal.
	var keyID int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, '<img src=x onerror=alert(1)>', 'lw1:x', 'aws') RETURNING id`, org.ID).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	if st, once := formPage(t, admin, "/integrations/revocation", map[string]string{"key": "default", "url": "https://ops.example/revoke?t=zzz", "hmac": "1"}); st != http.StatusOK ||
		!strings.Contains(once, `id="secret-value"`) {
		t.Fatalf("set default = %d without the HMAC secret", st)
	}
	if st, once := formPage(t, admin, "/integrations/revocation", map[string]string{"key": fmt.Sprint(keyID), "url": "https://keyops.example/revoke"}); st != http.StatusOK ||
		strings.Contains(once, `id="secret-value"`) || !strings.Contains(once, "Revocation endpoint saved") {
		t.Fatalf("set for key = %d", st)
	}
	body = page(admin, "/integrations")
	if !strings.Contains(body, "ops.example") || !strings.Contains(body, "keyops.example") || strings.Contains(body, "t=zzz") ||
		strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Fatalf("endpoints:\n%s", body)
	}
	if got := formResult(t, admin, "/integrations/revocation", map[string]string{"key": "999999", "url": "https://keyops.example/revoke"}); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("unknown key: %s", got)
	}
	if n := strings.Count(body, `action="/integrations/revocation/remove" data-confirm="`); n != 2 {
		t.Fatalf("%d endpoint removals ask for confirmation, want 2", n)
	}
	if got := formResult(t, admin, "/integrations/revocation/remove", map[string]string{"key": "default"}); got != "Revocation endpoint removed." {
		t.Fatalf("remove: %s", got)
	}
	if got := formResult(t, admin, "/integrations/revocation/remove", map[string]string{"key": "default"}); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("remove again: %s", got)
	}
	if got := formResult(t, admin, "/integrations/revocation/remove", nil); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("remove without a key: %s", got)
	}

	var actions string
	if err := b.pool.QueryRow(ctx, `SELECT string_agg(action, ',' ORDER BY id) FROM audit_log WHERE org_id = $1`, org.ID).Scan(&actions); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"org.update", "slack.test", "slack.connect", "slack.disconnect", "webhook.subscribe", "webhook.unsubscribe", "revocation_endpoint.set", "revocation_endpoint.delete"} {
		if !strings.Contains(actions, a) {
			t.Errorf("no %s in the audit log: %s", a, actions)
		}
	}
}

// TestRevocationEndpointTestRequest: "send a test request" queues a job
// whose one signed call reaches the endpoint, and the attempt (status,
// the receiver's answer as text) shows under the endpoint.
func TestRevocationEndpointTestRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIncidentFixture(t)
	b := f.testBundle
	admin := b.signIn(t, "admin@acme.example")
	recv := newReceiver(t, `{"status":"manual","reason":"<b>test</b>"}`)
	if got := formResult(t, admin, "/integrations/revocation/test", map[string]string{"key": "default"}); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("test without an endpoint: %s", got)
	}
	if st, _ := formPage(t, admin, "/integrations/revocation", map[string]string{"key": "default", "url": recv.URL + "/revoke"}); st != http.StatusOK {
		t.Fatalf("set endpoint = %d", st)
	}
	if got := formResult(t, admin, "/integrations/revocation/test", map[string]string{"key": "default"}); !strings.HasPrefix(got, "Test request queued") {
		t.Fatalf("test: %s", got)
	}
	var args incidents.RevocationTestArgs
	if err := b.pool.QueryRow(ctx, `SELECT args FROM river_job WHERE kind = 'revocation_test'`).Scan(&args); err != nil || args.RequestedBy != "admin@acme.example" {
		t.Fatalf("queued %+v (%v)", args, err)
	}
	guard := webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	revoker := incidents.NewRevocationWorker(f.svc, webhook.NewSender(webhook.NewHTTPClient(guard, 10*time.Second), guard, &f.sk, nil), b.logger)
	if err := revoker.SendTest(ctx, args); err != nil {
		t.Fatal(err)
	}
	got := recv.got()
	if len(got) != 1 || !strings.Contains(got[0], `"revocation.test"`) || !strings.Contains(got[0], "admin@acme.example") {
		t.Fatalf("receiver got %q", got)
	}
	_, _, page := admin.page("/integrations")
	if !strings.Contains(page, "1 latest") || !strings.Contains(page, "HTTP 200") || !strings.Contains(page, "succeeded") ||
		strings.Contains(page, "<b>test</b>") || !strings.Contains(page, "&lt;b&gt;test&lt;/b&gt;") {
		t.Fatalf("the endpoint's requests:\n%s", page)
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM incidents`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a test request touched incidents: %d (%v)", n, err)
	}
}

// TestIntegrationsSlackRoutes sets the per-severity routes of PUT
// /api/v1/integrations/slack through the bot form on /integrations and
// reads them back from the API, the form and the audit log. Viewers get no
// form; hostile channel names are refused, and render as text when stored.
func TestIntegrationsSlackRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	withIntegrations(t, b)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "viewer@acme.example", org.ID, auth.RoleViewer)
	admin, viewer := b.signIn(t, "admin@acme.example"), b.signIn(t, "viewer@acme.example")
	bot := func(extra map[string]string) map[string]string {
		v := map[string]string{"bot_token": itToken, "signing_secret": itSecret, "default_channel": "C0ALERTS",
			"route_critical_mention": "here", "route_high_mention": "", "route_medium_mention": "", "route_low_mention": ""}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	routes := func() map[string]slack.Route {
		t.Helper()
		var conn slackConnectionJSON
		admin.mustJSON(http.MethodGet, "/api/v1/integrations/slack", nil, http.StatusOK, &conn)
		return conn.Routes
	}

	// Viewers: no page, so no form, and the form's route is refused.
	if st, _, body := viewer.page("/integrations"); st != http.StatusForbidden || strings.Contains(body, "route_high_channel") {
		t.Fatalf("viewer integrations page = %d", st)
	}
	if r := viewer.form("/integrations/slack/bot", bot(map[string]string{"route_high_channel": "C0HIGH"})); r.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer bot form = %d", r.StatusCode)
	}

	// Routes set by the form: critical without a mention (not the default
	// @here), high to its own channel with @channel, low in the digest only;
	// medium stays on the default route.
	if got := formResult(t, admin, "/integrations/slack/bot", bot(map[string]string{
		"route_critical_mention": "", "route_high_channel": " C0HIGH ", "route_high_mention": "channel", "route_low_digest": "1",
	})); !strings.HasPrefix(got, "Slack bot connected") {
		t.Fatalf("connect with routes: %s", got)
	}
	want := map[string]slack.Route{"critical": {}, "high": {Channel: "C0HIGH", Mention: "channel"}, "low": {DigestOnly: true}}
	if got := routes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("routes = %+v, want %+v", got, want)
	}
	_, _, page := admin.page("/integrations")
	for _, s := range []string{`id="route-high-channel" aria-label="high channel id" placeholder="C0789IJKL" value="C0HIGH"`,
		`id="route-critical-mention" aria-label="critical mention"><option value="" selected>none</option>`,
		`id="route-high-mention" aria-label="high mention"><option value="">none</option><option value="here">@here</option><option value="channel" selected>`,
		`id="route-low-digest" aria-label="low in the weekly digest only" value="1" checked>`,
		`id="route-medium-digest" aria-label="medium in the weekly digest only" value="1">`} {
		if !strings.Contains(page, s) {
			t.Errorf("form does not show %s", s)
		}
	}
	var details string
	if err := b.pool.QueryRow(ctx, `SELECT details->>'routes' FROM audit_log WHERE org_id = $1 AND action = 'slack.connect' ORDER BY id DESC LIMIT 1`, org.ID).Scan(&details); err != nil ||
		details != `["critical", "high", "low"]` {
		t.Fatalf("audited routes %q (%v)", details, err)
	}

	// Back to the defaults: critical @here is no route of its own.
	if got := formResult(t, admin, "/integrations/slack/bot", bot(nil)); !strings.HasPrefix(got, "Slack bot connected") {
		t.Fatalf("reconnect: %s", got)
	}
	if got := routes(); len(got) != 0 {
		t.Fatalf("default routes stored: %+v", got)
	}

	// A hostile channel name is refused and changes nothing.
	hostile := `<script>alert("x")</script>`
	if got := formResult(t, admin, "/integrations/slack/bot", bot(map[string]string{"route_high_channel": hostile})); !strings.HasPrefix(got, "error: ") || strings.Contains(got, "<script") {
		t.Fatalf("hostile channel: %s", got)
	}
	if got := routes(); len(got) != 0 {
		t.Fatalf("routes after a refused form: %+v", got)
	}
	// One stored before validation existed renders as text.
	if _, err := b.pool.Exec(ctx, `UPDATE slack_connections SET routes = jsonb_build_object('high', jsonb_build_object('channel', $2::text)) WHERE org_id = $1`, org.ID, hostile); err != nil {
		t.Fatal(err)
	}
	_, _, page = admin.page("/integrations")
	if strings.Contains(page, hostile) || !strings.Contains(page, `value="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"`) {
		t.Fatal("a stored hostile channel is not escaped")
	}
}
