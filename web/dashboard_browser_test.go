package web

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
)

// waitJS polls a JavaScript condition until it holds or the browser's
// deadline passes.
func waitJS(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: never happened (%v)", what, err)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func evalInt(t *testing.T, ctx context.Context, js string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return n
}

// TestBrowserDashboard works the dashboard in headless Chromium as a
// security lead would: the overview's charts, filtering the queue through
// its form, paging past 200, a new incident and a change arriving live
// without a reload (queue and incident page), a confirmed bulk action, and
// the 390 px layout without sideways scrolling.
func TestBrowserDashboard(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	f := newIncidentFixture(t)
	b, svc := f.testBundle, f.svc
	t.Cleanup(b.srv.CloseStreams) // before the test server's Close waits for them
	seedIncidents(t, b.pool, f.org.ID, 205, "svc-")
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

	// Destructive actions ask first: accept the question, and count it.
	dialogs := make(chan string, 8)
	go func() {
		for ev, err := range chromedp.Events(ctx, cdppage.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			dialogs <- ev.Message
			if _, err := chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				return
			}
		}
	}()
	// Overview.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "overview charts", `!!document.getElementById("chart-severity")`)
	// Severity, phase, per day, times, and the three weekly trends.
	if n := evalInt(t, ctx, `document.querySelectorAll("svg.chart[role=img] > title").length`); n != 7 {
		t.Fatalf("%d titled charts on the overview, want 7", n)
	}

	// Filter the queue through its form.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/incidents"),
		chromedp.SetValue(chromedp.CSS(`#filters select[name=severity]`), "critical"),
		chromedp.SetValue(chromedp.CSS(`#filters input[name=limit]`), "100"),
		chromedp.Click(chromedp.ID("filter-apply")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "filtered queue", `location.search.includes("severity=critical") && location.search.includes("limit=100") &&
		document.readyState === "complete" && document.querySelectorAll("#queue-body tr").length > 50 &&
		document.querySelectorAll("#queue-body tr").length === document.querySelectorAll("#queue-body .sev-critical").length`)

	// Page past 200.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/incidents?limit=100")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("next-page"))); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "next page", `location.search.includes("cursor=") && document.readyState === "complete"`)
		time.Sleep(100 * time.Millisecond)
	}
	waitJS(t, ctx, "third page", `document.querySelectorAll("#queue-body tr").length === 5 && !document.getElementById("next-page")`)

	// A new incident arrives live.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/incidents?limit=10")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live stream ready", `document.getElementById("live").dataset.liveReady === "1"`)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__sameDocument = true`)); err != nil {
		t.Fatal(err)
	}
	if err := svc.Record(context.Background(), []crawler.Finding{{KeyID: f.key.ID, OrgID: f.org.ID, Fingerprint: f.key.Fingerprint,
		Source: "github", URL: "https://github.com/o/live/blob/x/a#L1", EventAt: time.Now(), DetectedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := b.pool.QueryRow(context.Background(), `SELECT id FROM incidents WHERE key_id = $1`, f.key.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	row := "incident-" + strconv.FormatInt(id, 10)
	waitJS(t, ctx, "change event", `Number(document.getElementById("live").dataset.liveEvents || 0) > 0`)
	waitJS(t, ctx, "new incident row", `!!document.getElementById("`+row+`")`)
	waitJS(t, ctx, "badge", `!document.getElementById("live-badge").hidden && document.getElementById("live-badge").textContent.includes("new")`)
	if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`)); !ok {
		t.Fatal("the page reloaded")
	}

	// Bulk acknowledge two incidents, confirming.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#queue-body tr:nth-child(1) input[name=id]`)),
		chromedp.Click(chromedp.CSS(`#queue-body tr:nth-child(2) input[name=id]`)),
		chromedp.SetValue(chromedp.ID("bulk-action"), "acknowledge"),
		chromedp.Click(chromedp.ID("bulk-apply")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "bulk notice", `(document.getElementById("queue-notice") || {}).textContent === "Acknowledged 2 incident(s)."`)
	select {
	case msg := <-dialogs:
		if !strings.Contains(msg, "selected") {
			t.Fatalf("confirmation %q", msg)
		}
	default:
		t.Fatal("the bulk action did not ask for confirmation")
	}

	// The incident page updates live: acknowledged elsewhere. The new
	// incident was just acknowledged by the bulk action; assign it instead.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/incidents/"+strconv.FormatInt(id, 10))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "incident stream ready", `document.getElementById("live").dataset.liveReady === "1"`)
	if err := svc.Assign(context.Background(), id, f.admin.ID, incidents.Actor{Name: "admin@acme.example", OrgID: f.org.ID}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "assignee shown live", `document.getElementById("assignee").textContent === "admin@acme.example"`)
	waitJS(t, ctx, "timeline shows the member", `document.getElementById("timeline").textContent.includes("assignee: admin@acme.example")`)

	// 390 px: nothing scrolls sideways; tables became cards.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/incidents", "/incidents/" + strconv.FormatInt(id, 10), "/keys", "/keys/" + strconv.FormatInt(f.key.ID, 10),
		"/settings", "/audit", "/sources", "/integrations", "/account", "/members", "/incidents/999999"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+path)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, path+" loaded", `document.readyState === "complete" && !!document.querySelector("header nav")`)
		if w := evalInt(t, ctx, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("%s is %d px wide at 390 px", path, w)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/incidents")); err != nil {
		t.Fatal(err)
	}
	if d, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#queue-body tr")).display`)); err != nil || d != "block" {
		t.Fatalf("queue rows at 390 px display %q (%v), want stacked cards", d, err)
	}

	// Change the password on the account page, sign out, sign in with it.
	const pw = "a brand new passphrase"
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/account"),
		chromedp.SendKeys(chromedp.CSS(`#password-form input[name=current_password]`), testPassword),
		chromedp.SendKeys(chromedp.ID("new-password"), pw),
		chromedp.SendKeys(chromedp.ID("confirm-password"), pw),
		chromedp.Click(chromedp.ID("password-save")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "password saved", `(document.getElementById("account-notice") || {}).textContent === "Password saved. Other sessions were signed out."`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/signout"] button`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "signed out", `location.pathname === "/signin" && document.readyState === "complete"`)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "admin@acme.example"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), pw),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button`)),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "signed in with the new password", `location.pathname === "/incidents" && !!document.getElementById("queue-body")`)
}
