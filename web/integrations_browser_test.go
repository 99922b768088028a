package web

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// TestBrowserIntegrations shows the failing-source banner, connects Slack
// and sends a test message,
// subscribes an event webhook and reads its delivery, edits the SLA
// settings and the organisation's name, and exports the audit log, in
// headless Chromium: the fake Slack and the receiver are loopback servers, reached
// through the outgoing-request guard allowing 127.0.0.0/8.
func TestBrowserIntegrations(t *testing.T) {
	// Not parallel: two Chromiums at once on a loaded 2-core machine push
	// TestBrowserDashboard past its browser deadline.
	ctx := browser(t)
	f := newIncidentFixture(t)
	b := f.testBundle
	fake := withIntegrations(t, b)
	// A paste source that fails: every page must say so.
	store := paste.NewStore(b.pool)
	b.srv.paste = store
	if _, err := store.Register(context.Background(), staticSource{"pastebin", paste.KindPastebin}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(context.Background(), `UPDATE paste_sources SET consecutive_failures = 5, last_error = 'HTTP 503',
		last_error_at = now(), last_poll_at = now() WHERE name = 'pastebin'`); err != nil {
		t.Fatal(err)
	}
	link, err := b.auth.NewLoginLink(context.Background(), audit.System, f.admin.ID, f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	base := b.ts.URL
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/signin/link?token="+link),
		chromedp.Click(chromedp.ID("signin-link-button")),
		chromedp.WaitVisible(chromedp.ID("register-form")),
	); err != nil {
		t.Fatal(err)
	}

	// Connect the Slack bot and send a test message.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/integrations"),
		chromedp.SendKeys(chromedp.CSS(`#slack-bot-form input[name=bot_token]`), itToken),
		chromedp.SendKeys(chromedp.CSS(`#slack-bot-form input[name=signing_secret]`), itSecret),
		chromedp.SetValue(chromedp.CSS(`#slack-bot-form input[name=default_channel]`), "C0ALERTS"),
		chromedp.Click(chromedp.ID("slack-bot-save")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "failing-source banner", `(() => { const b = document.getElementById("source-banner");
		return !!b && b.offsetHeight > 0 && b.textContent.includes("pastebin (failing) is failing") })()`)
	waitJS(t, ctx, "bot connected", `document.readyState === "complete" && (document.getElementById("slack-mode") || {}).textContent === "bot"`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("slack-test"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "test queued", `(document.getElementById("integrations-notice") || {}).textContent.startsWith("Test message queued")`)
	workSlackTest(t, b)
	if top := fake.TopLevel("C0ALERTS"); len(top) != 1 || !strings.Contains(top[0].Text, "admin@acme.example") {
		t.Fatalf("Slack got %+v", top)
	}

	// Subscribe a webhook; its secret is shown once.
	recv := newReceiver(t, "thanks")
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("webhook-url"), recv.URL+"/leakwatch"),
		chromedp.Click(chromedp.ID("webhook-save")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "secret shown", `(document.getElementById("secret-value") || {textContent: ""}).textContent.startsWith("whsec_")`)
	var hookID int64
	if err := b.pool.QueryRow(context.Background(), `SELECT id FROM event_webhooks WHERE org_id = $1`, f.org.ID).Scan(&hookID); err != nil {
		t.Fatal(err)
	}

	// An incident opens; the delivery worker calls the receiver.
	if err := f.svc.Record(context.Background(), []crawler.Finding{{KeyID: f.key.ID, OrgID: f.org.ID, Fingerprint: f.key.Fingerprint,
		Source: "github", URL: "https://github.com/o/r/blob/x/a#L1", EventAt: time.Now(), DetectedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	var eventID int64
	if err := b.pool.QueryRow(context.Background(), `SELECT e.id FROM incident_events e JOIN incidents i ON i.id = e.incident_id
		WHERE i.key_id = $1 ORDER BY e.id LIMIT 1`, f.key.ID).Scan(&eventID); err != nil {
		t.Fatal(err)
	}
	guard := webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	sender := webhook.NewSender(webhook.NewHTTPClient(guard, 10*time.Second), guard, &f.sk, nil)
	w := eventhooks.NewWorker(b.pool, b.srv.eventHooks, f.svc, sender, base, b.logger)
	if err := w.Work(context.Background(), &river.Job[eventhooks.DeliverArgs]{JobRow: &rivertype.JobRow{},
		Args: eventhooks.DeliverArgs{SubscriptionID: hookID, EventID: eventID, Type: eventhooks.EventIncidentOpened}}); err != nil {
		t.Fatal(err)
	}
	if got := recv.got(); len(got) != 1 {
		t.Fatalf("receiver got %d calls", len(got))
	}

	// The delivery log shows it, reached from the integrations page.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/integrations"),
		chromedp.Click(chromedp.CSS(`#hook-`+strconv.FormatInt(hookID, 10)+` a`)),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "delivery shown", `document.querySelectorAll("tr.delivery").length === 1 &&
		document.querySelector("tr.delivery .delivery-status").textContent === "succeeded" &&
		document.querySelector("tr.delivery .attempts").textContent.includes("HTTP 200") &&
		document.querySelector("tr.delivery .attempts").textContent.includes("thanks")`)

	// Edit the SLA settings and the organisation's name.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/settings"),
		chromedp.SetValue(chromedp.CSS(`#settings-form input[name=ack_critical]`), "7"),
		chromedp.Click(chromedp.ID("settings-save")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "settings saved", `(document.getElementById("settings-notice") || {}).textContent === "Settings saved." &&
		document.querySelector("#settings-form input[name=ack_critical]").value === "7"`)
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("org-name"), "Acme Security"),
		chromedp.Click(chromedp.ID("org-save")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "renamed", `(document.getElementById("settings-notice") || {}).textContent === "Renamed the organisation Acme Security."`)
	if st, err := f.svc.Settings(context.Background(), f.org.ID); err != nil || st.AckCriticalS != 7*60 {
		t.Fatalf("critical SLA %d s (%v)", st.AckCriticalS, err)
	}

	// Export the audit log from the audit page's link, as the browser
	// downloads it: every change above is in it.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/audit")); err != nil {
		t.Fatal(err)
	}
	csv, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.querySelector('a[href^="/audit/export.csv"]').href).then(r => r.text())`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"slack.connect", "slack.test", "webhook.subscribe", "incident_settings.update", "org.update"} {
		if !strings.Contains(csv, a) {
			t.Errorf("the export lacks %s:\n%s", a, csv)
		}
	}
}
