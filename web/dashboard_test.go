package web

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/crawler"
	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
)

// seedIncidents inserts n keys with one incident and one sighting each,
// severities and sources cycling, the oldest first. Tests and benchmarks
// need hundreds or thousands: recording each through the workflow (with
// its jobs) would dominate their time, and the reads are what is tested.
func seedIncidents(tb testing.TB, pool *pgxpool.Pool, orgID int64, n int, namePrefix string) {
	tb.Helper()
	_, err := pool.Exec(context.Background(), `
		WITH k AS (
			INSERT INTO keys (org_id, name, fingerprint, provider)
			SELECT $1::bigint, $3::text || g, 'lw1:seed-' || $1::bigint || '-' || $3::text || g, 'aws' FROM generate_series(1, $2::int) g
			RETURNING id, name
		), i AS (
			INSERT INTO incidents (org_id, key_id, first_seen_at, last_seen_at, identified_at, source_url, severity, fingerprint)
			SELECT $1::bigint, k.id, now() - make_interval(mins => $2::int - k.id::int % 100000), now() - make_interval(mins => $2::int - k.id::int % 100000),
				now() - make_interval(mins => $2::int - k.id::int % 100000),
				'https://github.com/acme/repo-' || k.id || '/blob/main/.env',
				(ARRAY['critical','high','medium','low'])[1 + k.id % 4], 'lw1:seed'
			FROM k ORDER BY k.id
			RETURNING id, key_id
		)
		INSERT INTO occurrences (incident_id, key_id, dedup_key, source, url, repo, detected_at, event_at)
		SELECT i.id, i.key_id, 'seed' || i.id, (ARRAY['github','gist','pastebin'])[1 + i.id % 3],
			'https://github.com/acme/repo-' || i.key_id || '/blob/main/.env', 'acme/repo-' || i.key_id, now(), now() - interval '1 minute'
		FROM i`, orgID, n, namePrefix)
	if err != nil {
		tb.Fatal(err)
	}
}

var rowIDs = regexp.MustCompile(`<tr id="incident-(\d+)"`)

// TestQueue pages past 200 with no hidden cap, filters by every field,
// searches, sorts, refuses malformed parameters with 400, and keeps the
// organisation in the links.
func TestQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	seedIncidents(t, b.pool, org.ID, 205, "svc-")
	other := b.mustOrg(t, "other")
	seedIncidents(t, b.pool, other.ID, 3, "theirs-")
	c := b.signIn(t, "view@acme.example")

	for _, sort := range []string{"newest", "oldest", "severity", "last_seen"} {
		seen := map[string]bool{}
		next, pages := "/incidents?sort="+sort+"&limit=50", 0
		for next != "" {
			status, _, page := c.page(next)
			if status != http.StatusOK {
				t.Fatalf("%s = %d", next, status)
			}
			for _, m := range rowIDs.FindAllStringSubmatch(page, -1) {
				if seen[m[1]] {
					t.Fatalf("sort %s: incident %s on two pages", sort, m[1])
				}
				seen[m[1]] = true
			}
			pages++
			next = ""
			if m := regexp.MustCompile(`id="next-page" href="([^"]+)"|href="([^"]+)" id="next-page"`).FindStringSubmatch(page); m != nil {
				next = strings.ReplaceAll(m[1]+m[2], "&amp;", "&")
			}
		}
		if len(seen) != 205 || pages != 5 {
			t.Fatalf("sort %s: %d incidents over %d pages, want 205 over 5", sort, len(seen), pages)
		}
	}

	_, _, page := c.page("/incidents?severity=critical&limit=500")
	if n := len(rowIDs.FindAllString(page, -1)); n != 51 || strings.Contains(page, `sev-high">`) {
		t.Fatalf("critical filter: %d rows", n)
	}
	if !strings.Contains(page, `<option value="critical" selected>`) {
		t.Error("the filter form does not show the filter")
	}
	var gists int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM occurrences o JOIN incidents i ON i.id = o.incident_id
		WHERE i.org_id = $1 AND o.source = 'gist'`, org.ID).Scan(&gists); err != nil {
		t.Fatal(err)
	}
	_, _, page = c.page("/incidents?source=gist&limit=500")
	if n := len(rowIDs.FindAllString(page, -1)); n != gists || gists < 60 {
		t.Fatalf("gist filter: %d rows, want %d", n, gists)
	}
	_, _, page = c.page("/incidents?q=" + url.QueryEscape("SVC-205"))
	if n := len(rowIDs.FindAllString(page, -1)); n != 1 || !strings.Contains(page, ">svc-205<") {
		t.Fatalf("search by key name: %d rows", n)
	}
	_, _, page = c.page("/incidents?q=%25")
	if n := len(rowIDs.FindAllString(page, -1)); n != 0 {
		t.Fatalf("a %% is a literal, not a wildcard: %d rows", n)
	}
	_, _, page = c.page("/incidents?unacknowledged=1&assignee=none&limit=10")
	if n := len(rowIDs.FindAllString(page, -1)); n != 10 {
		t.Fatalf("unacknowledged and unassigned: %d rows", n)
	}
	_, _, page = c.page("/incidents?escalated=1")
	if !strings.Contains(page, `id="queue-empty"`) {
		t.Fatal("escalated filter shows incidents")
	}
	if strings.Contains(page, "theirs-") {
		t.Fatal("another organisation's incidents in the queue")
	}
	_, _, page = c.page("/incidents?limit=5")
	if !strings.Contains(page, `href="/incidents/`) || !strings.Contains(page, "?org="+strconv.FormatInt(org.ID, 10)) {
		t.Fatal("incident links do not carry the organisation")
	}
	if !strings.Contains(page, `aria-current="page">Incidents`) {
		t.Fatal("the navigation does not show the current page")
	}
	if strings.Contains(page, `id="bulk"`) {
		t.Fatal("a viewer sees the bulk form")
	}
	for _, bad := range []string{"limit=0", "limit=501", "severity=urgent", "phase=done", "sort=name", "cursor=x.y", "key=abc", "assignee=me", "escalated=maybe"} {
		req, _ := http.NewRequest(http.MethodGet, b.ts.URL+"/incidents?"+bad, nil)
		req.Header.Set("Accept", "text/html")
		status, _, page := c.page("/incidents?" + bad)
		if status != http.StatusBadRequest {
			t.Errorf("%s = %d, want 400", bad, status)
		}
		if !strings.Contains(page, `href="/incidents"`) {
			t.Errorf("%s: the error page lost the navigation", bad)
		}
	}
}

// TestQueueBulk: bulk actions go through the single actions' roles,
// domain methods and audit; what cannot be done is reported per incident.
func TestQueueBulk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	resp := b.mustUser(t, "resp@acme.example", org.ID, auth.RoleResponder)
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	seedIncidents(t, b.pool, org.ID, 4, "svc-")
	page, err := b.srv.incidents.Queue(ctx, org.ID, incidents.QueueParams{Sort: incidents.SortOldest})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, it := range page.Items {
		ids = append(ids, strconv.FormatInt(it.ID, 10))
	}
	c := b.signIn(t, "resp@acme.example")
	post := func(c *client, form url.Values) *http.Response {
		form.Set("csrf_token", c.csrf)
		req, _ := http.NewRequest(http.MethodPost, b.ts.URL+"/incidents/bulk", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r
	}
	r := post(c, url.Values{"action": {"acknowledge"}, "id": ids[:3], "back": {"/incidents?severity=high"}})
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/incidents?severity=high&notice=") || !strings.Contains(loc, "Acknowledged+3") {
		t.Fatalf("bulk acknowledge = %d %s", r.StatusCode, loc)
	}
	var acked, audited int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM incidents WHERE acknowledged_by = 'resp@acme.example'`).Scan(&acked); err != nil {
		t.Fatal(err)
	}
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'incident.acknowledge' AND actor = 'resp@acme.example'`).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if acked != 3 || audited != 3 {
		t.Fatalf("acknowledged %d, audited %d; want 3 and 3", acked, audited)
	}
	// Acknowledging again is refused per incident, the rest is done.
	r = post(c, url.Values{"action": {"assign"}, "user_id": {strconv.FormatInt(resp.ID, 10)}, "id": ids})
	if loc := r.Header.Get("Location"); !strings.Contains(loc, "notice=Assigned+4") {
		t.Fatalf("bulk assign: %s", loc)
	}
	r = post(c, url.Values{"action": {"false_positive"}, "id": ids[:2]})
	if loc := r.Header.Get("Location"); !strings.Contains(loc, "error=") || !strings.Contains(loc, "reason") {
		t.Fatalf("closing without a reason: %s", loc)
	}
	r = post(c, url.Values{"action": {"false_positive"}, "reason": {"test fixture"}, "id": append([]string{"999999"}, ids[:2]...)})
	if loc, _ := url.QueryUnescape(r.Header.Get("Location")); !strings.Contains(loc, "Marked a false positive 2") || !strings.Contains(loc, "#999999: not found") {
		t.Fatalf("bulk close with an unknown id: %s", loc)
	}
	// A responder cannot accept a risk; a viewer can do nothing.
	if r := post(c, url.Values{"action": {"accept_risk"}, "reason": {"x"}, "id": ids[2:]}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("responder accept_risk = %d", r.StatusCode)
	}
	if r := post(b.signIn(t, "view@acme.example"), url.Values{"action": {"acknowledge"}, "id": ids[3:]}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer bulk = %d", r.StatusCode)
	}
	// back never leaves the queue.
	if r := post(c, url.Values{"action": {"acknowledge"}, "id": ids[3:], "back": {"//evil.example/incidents"}}); !strings.HasPrefix(r.Header.Get("Location"), "/incidents?") {
		t.Fatalf("bulk redirect to %s", r.Header.Get("Location"))
	}
}

// TestOverview: an empty organisation sees its checklist, ticked as steps
// are done; with incidents, accessible SVG charts; hostile names render as
// text; viewers see no forms.
func TestOverview(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	c := b.signIn(t, "admin@acme.example")
	status, _, page := c.page("/")
	if status != http.StatusOK || !strings.Contains(page, `id="onboarding"`) {
		t.Fatalf("empty overview = %d", status)
	}
	for step, done := range map[string]bool{"step-key": false, "step-slack": false, "step-endpoint": false, "step-invite": true} {
		if want := `id="` + step + `" class="` + map[bool]string{true: "done", false: "todo"}[done] + `"`; !strings.Contains(page, want) {
			t.Errorf("checklist lacks %s", want)
		}
	}
	const evil = `<img src=x onerror=alert(1)>`
	k, err := b.keys.Register(ctx, audit.System, org.ID, keys.Params{Name: "stale " + evil, Fingerprint: mustParse(t, fingerprint(t, secrets[0])), MaxAgeDays: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `UPDATE keys SET created_at = now() - interval '30 days' WHERE id = $1`, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, page = c.page("/"); !strings.Contains(page, `id="step-key" class="done"`) {
		t.Fatal("registering a key does not tick its step")
	}
	seedIncidents(t, b.pool, org.ID, 12, evil)
	status, _, page = c.page("/")
	if status != http.StatusOK || strings.Contains(page, `id="onboarding"`) {
		t.Fatalf("overview with incidents = %d", status)
	}
	for _, want := range []string{`<svg class="chart" id="chart-severity" role="img"`, `<title id="chart-opened-title">Incidents opened per day, last 30 days</title>`,
		`id="fig-opened">12<`, `critical: 3`, `aria-current="page">Overview`, "stale &lt;img src=x onerror=alert(1)&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(page, evil) {
		t.Fatal("a key name is not escaped")
	}
	if _, _, vp := b.signIn(t, "view@acme.example").page("/"); strings.Contains(vp, "<form method=\"post\" action=\"/incidents") || !strings.Contains(vp, "chart-phase") {
		t.Fatal("the viewer's overview")
	}
}

// TestIncidentEventsIsolated: the live stream carries the organisation's
// changes, only them, as they commit.
func TestIncidentEventsIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIncidentFixture(t)
	b, svc := f.testBundle, f.svc
	other := b.mustOrg(t, "third")
	seedIncidents(t, b.pool, other.ID, 1, "theirs-")
	c := b.signIn(t, "view@acme.example")
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, b.ts.URL+"/incidents/events", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, "data: ") {
				return l
			}
		}
		t.Fatalf("stream ended: %v", lines.Err())
		return ""
	}
	if l := next(); l != "data: {}" {
		t.Fatalf("first event %q, want ready", l)
	}
	// Another organisation's change first, then ours: only ours arrives.
	if _, err := b.pool.Exec(ctx, `UPDATE incidents SET severity = 'low' WHERE org_id = $1`, other.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.Record(ctx, []crawler.Finding{{KeyID: f.key.ID, OrgID: f.org.ID, Fingerprint: f.key.Fingerprint, Source: "github",
		URL: "https://github.com/o/r/blob/x/a#L1", EventAt: time.Now(), DetectedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents WHERE org_id = $1`, f.org.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	got := next()
	if !strings.Contains(got, `"incident_id":`+strconv.FormatInt(id, 10)) || !strings.Contains(got, `"new"`) {
		t.Fatalf("event %s, want the new incident %d", got, id)
	}
	if err := svc.Acknowledge(ctx, id, incidents.Actor{Name: "resp@acme.example", OrgID: f.org.ID}); err != nil {
		t.Fatal(err)
	}
	for {
		if got = next(); strings.Contains(got, "acknowledged") {
			break
		}
		if !strings.Contains(got, `"incident_id":`+strconv.FormatInt(id, 10)) {
			t.Fatalf("unexpected event %s", got)
		}
	}
}

// TestKeyRetiredRotation: a retired key offers no rotation, rotating it
// through the API is a 409, and reactivating is its own confirmed step.
func TestKeyRetiredRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	k, err := b.keys.Register(ctx, audit.System, org.ID, keys.Params{Name: "deploy", Fingerprint: mustParse(t, fingerprint(t, secrets[0]))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.keys.SetState(ctx, audit.System, org.ID, k.ID, keys.StateRetired); err != nil {
		t.Fatal(err)
	}
	c := b.signIn(t, "admin@acme.example")
	st, body := c.do(http.MethodPost, "/api/v1/keys/"+itoa(k.ID)+"/rotate", map[string]string{"fingerprint": fingerprint(t, secrets[1])})
	if st != http.StatusConflict || errorCode(t, body) != "retired" {
		t.Fatalf("rotating a retired key = %d %s", st, body)
	}
	_, _, page := c.page("/keys")
	if strings.Contains(page, `action="/keys/`+itoa(k.ID)+`/rotate"`) || !strings.Contains(page, `action="/keys/`+itoa(k.ID)+`/reactivate" data-confirm=`) {
		t.Fatal("the keys page offers rotation of a retired key, or no confirmed reactivation")
	}
	if _, _, vp := b.signIn(t, "view@acme.example").page("/keys"); strings.Contains(vp, "/reactivate") {
		t.Fatal("a viewer sees the reactivate form")
	}
	if r := b.signIn(t, "view@acme.example").form("/keys/"+itoa(k.ID)+"/reactivate", nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer reactivate = %d", r.StatusCode)
	}
	if r := c.form("/keys/"+itoa(k.ID)+"/reactivate", nil); r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "Reactivated") {
		t.Fatalf("reactivate = %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if got, _ := b.keys.Key(ctx, org.ID, k.ID); got.State != keys.StateActive {
		t.Fatalf("after reactivating: %s", got.State)
	}
}

// TestAccountPassword: a user without a password (the owner `orgs create`
// makes) sets one, then changes it with the current one; a wrong current
// password, a mismatch and a short one are refused with a message; other
// sessions end; sign out everywhere ends this one too.
func TestAccountPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	u, _, err := b.auth.EnsureUser(ctx, audit.System, "owner@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.auth.AddMember(ctx, audit.System, org.ID, u.ID, auth.RoleOwner); err != nil {
		t.Fatal(err)
	}
	link, err := b.auth.NewLoginLink(ctx, audit.System, u.ID, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := b.client(t)
	if r := c.form("/signin/link", map[string]string{"token": link}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("link sign-in = %d", r.StatusCode)
	}
	_, _, page := c.page("/account")
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "Set a password") || strings.Contains(page, "current_password") {
		t.Fatalf("account page of a user without a password: %.500s", page)
	}
	c.csrf = m[1]
	const pw = "a long enough passphrase"
	for _, bad := range []map[string]string{
		{"new_password": pw, "confirm_password": pw + "x"},
		{"new_password": "short", "confirm_password": "short"},
	} {
		if r := c.form("/account/password", bad); !strings.Contains(r.Header.Get("Location"), "/account?error=") {
			t.Fatalf("bad password accepted: %s", r.Header.Get("Location"))
		}
	}
	other := b.client(t)
	link2, _ := b.auth.NewLoginLink(ctx, audit.System, u.ID, org.ID)
	other.form("/signin/link", map[string]string{"token": link2})
	if r := c.form("/account/password", map[string]string{"new_password": pw, "confirm_password": pw}); !strings.Contains(r.Header.Get("Location"), "notice=") {
		t.Fatalf("set password: %s", r.Header.Get("Location"))
	}
	if st, loc, _ := other.page("/incidents"); st != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin") {
		t.Fatalf("the other session survived the password change: %d %s", st, loc)
	}
	if _, err := b.auth.SignIn(ctx, "owner@acme.example", pw, "192.0.2.9"); err != nil {
		t.Fatalf("sign in with the new password: %v", err)
	}
	// This browser kept a fresh session (with a new CSRF token).
	st, _, page := c.page("/account")
	if st != http.StatusOK || !strings.Contains(page, "Change your password") || !strings.Contains(page, `aria-current="page">owner@acme.example`) {
		t.Fatalf("account page after setting a password = %d", st)
	}
	c.csrf = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)[1]
	if r := c.form("/account/password", map[string]string{"current_password": "wrong password!", "new_password": pw + "2", "confirm_password": pw + "2"}); !strings.Contains(r.Header.Get("Location"), "error=") {
		t.Fatal("changed the password without the current one")
	}
	if r := c.form("/account/signout-all", nil); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/signin" {
		t.Fatalf("sign out everywhere = %d", r.StatusCode)
	}
	if st, _, _ := c.page("/account"); st != http.StatusSeeOther {
		t.Fatalf("after signing out everywhere: %d", st)
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action IN ('user.password_set', 'session.delete_all')`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("audit entries %d (%v)", n, err)
	}
}

// TestSettingsPage: admins edit the limits through the same checks and
// audit as the API; viewers see them without a form; bad input is a
// message, never a 500.
func TestSettingsPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	admin := b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	outsider := b.mustUser(t, "eve@other.example", b.mustOrg(t, "other").ID, auth.RoleAdmin)
	c := b.signIn(t, "admin@acme.example")
	_, _, page := c.page("/settings")
	if !strings.Contains(page, `name="ack_critical" min="1" max="43200" value="15"`) || !strings.Contains(page, `aria-current="page">Settings`) {
		t.Fatal("settings page lacks the default critical SLA")
	}
	form := map[string]string{"ack_critical": "5", "ack_high": "30", "ack_medium": "120", "ack_low": "600", "phase_limit": "720",
		"default_assignee": strconv.FormatInt(admin.ID, 10), "escalation_slack_url": "https://hooks.slack.example/T/B/x"}
	if r := c.form("/settings", form); !strings.Contains(r.Header.Get("Location"), "notice=") {
		t.Fatalf("save settings: %s", r.Header.Get("Location"))
	}
	st, err := b.srv.incidents.Settings(ctx, org.ID)
	if err != nil || st.AckCriticalS != 300 || st.PhaseLimitS != 720*60 || st.DefaultAssigneeID == nil || *st.DefaultAssigneeID != admin.ID || !st.EscalationConfigured {
		t.Fatalf("saved settings %+v (%v)", st, err)
	}
	for field, bad := range map[string]string{"ack_high": "0", "ack_low": "lots", "default_assignee": strconv.FormatInt(outsider.ID, 10), "escalation_slack_url": "http://insecure.example"} {
		f := map[string]string{}
		for k, v := range form {
			f[k] = v
		}
		f[field] = bad
		if r := c.form("/settings", f); !strings.Contains(r.Header.Get("Location"), "/settings?error=") {
			t.Errorf("%s=%s accepted: %d %s", field, bad, r.StatusCode, r.Header.Get("Location"))
		}
	}
	var audited int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'incident_settings.update'`).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("audit entries %d (%v)", audited, err)
	}
	v := b.signIn(t, "view@acme.example")
	if _, _, vp := v.page("/settings"); strings.Contains(vp, `id="settings-form"`) || !strings.Contains(vp, `id="settings-view"`) || strings.Contains(vp, "hooks.slack.example") {
		t.Fatal("the viewer's settings page")
	}
	if r := v.form("/settings", form); r.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer save = %d", r.StatusCode)
	}
}

// TestAuditPage: filter, page, export as CSV (formulas neutralised), hostile
// values as text; admins only.
func TestAuditPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "resp@acme.example", org.ID, auth.RoleResponder)
	const evil = `=HYPERLINK("https://evil.example")<script>x</script>`
	for i := range 5 {
		if err := b.audit.Write(ctx, audit.Entry{OrgID: org.ID, Actor: "robot@acme.example", Action: "key.rotate", ObjectType: "key", ObjectID: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.audit.Write(ctx, audit.Entry{OrgID: org.ID, Actor: evil, Action: "incident.note", ObjectType: "incident", ObjectID: "9"}); err != nil {
		t.Fatal(err)
	}
	c := b.signIn(t, "admin@acme.example")
	_, _, page := c.page("/audit?action=key.&limit=3")
	if n := strings.Count(page, `<tr id="audit-`); n != 3 || !strings.Contains(page, `id="audit-next"`) || strings.Contains(page, "incident.note") {
		t.Fatalf("filtered first page: %d rows", n)
	}
	_, _, page = c.page("/audit?action=incident.")
	if strings.Contains(page, "<script>x</script>") || !strings.Contains(page, "&lt;script&gt;x&lt;/script&gt;") {
		t.Fatal("a hostile actor is not escaped")
	}
	st, _, csvBody := c.page("/audit/export.csv?object_type=incident")
	if st != http.StatusOK || !strings.HasPrefix(csvBody, "id,time,actor,action") || !strings.Contains(csvBody, `"'=HYPERLINK(""https://evil.example"")`) || strings.Contains(csvBody, "key.rotate") {
		t.Fatalf("CSV export = %d:\n%s", st, csvBody)
	}
	if st, _, _ := b.signIn(t, "resp@acme.example").page("/audit"); st != http.StatusForbidden {
		t.Fatalf("responder audit page = %d", st)
	}
	if st, _, _ := c.page("/audit?cursor=x"); st != http.StatusBadRequest {
		t.Fatalf("bad cursor = %d", st)
	}
}

// TestFailingSourceBanner: while a source fails, every page says so.
func TestFailingSourceBanner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	store := paste.NewStore(b.pool)
	b.srv.paste = store
	for _, name := range []string{"pastebin", "healthy"} {
		if _, err := store.Register(ctx, staticSource{name, paste.KindPastebin}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.pool.Exec(ctx, `UPDATE paste_sources SET consecutive_failures = 5, last_error = 'HTTP 503', last_error_at = now(),
		last_poll_at = now() WHERE name = 'pastebin'`); err != nil {
		t.Fatal(err)
	}
	hs, err := store.Health(ctx)
	if err != nil || len(hs) != 2 || hs[1].State != paste.StateFailing {
		t.Fatalf("fixture health %+v (%v)", hs, err)
	}
	c := b.signIn(t, "view@acme.example")
	for _, path := range []string{"/", "/incidents", "/keys", "/members", "/settings", "/incidents/999999"} {
		_, _, page := c.page(path)
		if !strings.Contains(page, `id="source-banner"`) || !strings.Contains(page, "pastebin (failing) is failing") || strings.Contains(page, "healthy (") {
			t.Errorf("%s lacks the failing-source banner", path)
		}
	}
}

// TestKeyPage: metadata, history and incidents; admins edit and change the
// state (confirmed, audited); viewers see no forms; hostile values are text;
// another organisation's key is a 404.
func TestKeyPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	other := b.mustOrg(t, "other")
	b.mustUser(t, "eve@other.example", other.ID, auth.RoleAdmin)
	const evil = `<b onmouseover=alert(1)>owner</b>`
	k, err := b.keys.Register(ctx, audit.System, org.ID, keys.Params{Name: "deploy", Owner: evil, Fingerprint: mustParse(t, fingerprint(t, secrets[0]))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.keys.Rotate(ctx, audit.System, org.ID, k.ID, mustParse(t, fingerprint(t, secrets[1]))); err != nil {
		t.Fatal(err)
	}
	path := "/keys/" + itoa(k.ID)
	c := b.signIn(t, "admin@acme.example")
	st, _, page := c.page(path)
	if st != http.StatusOK || strings.Count(page, `<td data-label="Fingerprint">`) != 2 || !strings.Contains(page, `id="key-edit"`) || strings.Contains(page, evil) ||
		!strings.Contains(page, "&lt;b onmouseover=alert(1)&gt;owner&lt;/b&gt;") || !strings.Contains(page, "Never seen in public") {
		t.Fatalf("key page = %d", st)
	}
	if r := c.form(path+"/edit", map[string]string{"name": "deploy-bot", "environment": "staging", "owner": "ops", "notes": "repo:write", "tags": "ci, prod", "max_age_days": "30"}); !strings.Contains(r.Header.Get("Location"), "notice=") {
		t.Fatalf("edit: %s", r.Header.Get("Location"))
	}
	got, _ := b.keys.Key(ctx, org.ID, k.ID)
	if got.Name != "deploy-bot" || got.Environment != "staging" || got.MaxAgeDays != 30 || len(got.Tags) != 2 {
		t.Fatalf("after edit: %+v", got)
	}
	if r := c.form(path+"/edit", map[string]string{"name": "", "environment": "staging", "max_age_days": "x"}); !strings.Contains(r.Header.Get("Location"), "error=") {
		t.Fatalf("bad edit: %s", r.Header.Get("Location"))
	}
	if r := c.form(path+"/state", map[string]string{"state": "retired"}); !strings.Contains(r.Header.Get("Location"), "retired") {
		t.Fatalf("retire: %s", r.Header.Get("Location"))
	}
	if _, _, page = c.page(path); !strings.Contains(page, `value="active"><button>Reactivate`) || strings.Contains(page, `value="retired"><button>`) {
		t.Fatal("a retired key's page")
	}
	if _, _, vp := b.signIn(t, "view@acme.example").page(path); strings.Contains(vp, "<form method=\"post\" action=\"/keys/") || !strings.Contains(vp, "deploy-bot") {
		t.Fatal("the viewer's key page")
	}
	if st, _, _ := b.signIn(t, "eve@other.example").page(path); st != http.StatusNotFound {
		t.Fatalf("another organisation's key = %d", st)
	}
}

// TestKeysListFilters: state and stale filters, and pages with a cursor.
func TestKeysListFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	seedIncidents(t, b.pool, org.ID, 7, "k-")
	if _, err := b.pool.Exec(ctx, `UPDATE keys SET state = 'retired' WHERE name IN ('k-1', 'k-2')`); err != nil {
		t.Fatal(err)
	}
	c := b.signIn(t, "view@acme.example")
	keyRows := regexp.MustCompile(`<tr id="key-\d+">`)
	_, _, page := c.page("/keys?state=retired")
	if n := len(keyRows.FindAllString(page, -1)); n != 2 {
		t.Fatalf("retired filter: %d rows", n)
	}
	seen := 0
	next := "/keys?limit=3"
	for pages := 0; next != ""; pages++ {
		_, _, page = c.page(next)
		seen += len(keyRows.FindAllString(page, -1))
		next = ""
		if m := regexp.MustCompile(`href="([^"]+)" id="keys-next"`).FindStringSubmatch(page); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
		if pages > 5 {
			t.Fatal("pages never end")
		}
	}
	if seen != 7 {
		t.Fatalf("paged through %d keys, want 7", seen)
	}
	if st, _, _ := c.page("/keys?state=lost"); st != http.StatusBadRequest {
		t.Fatalf("bad state = %d", st)
	}
}

// TestSourcesPage: feed health, watches added and removed by admins
// (audited, names validated), paste source states; viewers see no forms.
func TestSourcesPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.srv.github = ghcrawler.NewFeeds(b.pool)
	b.srv.paste = paste.NewStore(b.pool)
	if _, err := b.srv.paste.Register(ctx, staticSource{"pastebin", paste.KindPastebin}); err != nil {
		t.Fatal(err)
	}
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	c := b.signIn(t, "admin@acme.example")
	if r := c.form("/sources/watches", map[string]string{"kind": "org", "target": "acme-corp"}); !strings.Contains(r.Header.Get("Location"), "notice=Watching") {
		t.Fatalf("add watch: %s", r.Header.Get("Location"))
	}
	if r := c.form("/sources/watches", map[string]string{"kind": "repo", "target": `<script>alert(1)</script>`}); !strings.Contains(r.Header.Get("Location"), "error=") {
		t.Fatalf("a hostile name was accepted: %s", r.Header.Get("Location"))
	}
	st, _, page := c.page("/sources")
	if st != http.StatusOK || !strings.Contains(page, "<strong>acme-corp</strong>") || !strings.Contains(page, `id="paste-sources"`) ||
		!strings.Contains(page, `id="watch-add"`) || !strings.Contains(page, `aria-current="page">Sources`) {
		t.Fatalf("sources page = %d", st)
	}
	ws, err := b.srv.github.Watches(ctx, org.ID)
	if err != nil || len(ws) != 1 {
		t.Fatalf("watches %+v (%v)", ws, err)
	}
	v := b.signIn(t, "view@acme.example")
	if _, _, vp := v.page("/sources"); strings.Contains(vp, `id="watch-add"`) || strings.Contains(vp, "/remove") || !strings.Contains(vp, "acme-corp") {
		t.Fatal("the viewer's sources page")
	}
	if r := v.form("/sources/watches/"+itoa(ws[0].ID)+"/remove", nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer remove = %d", r.StatusCode)
	}
	if r := c.form("/sources/watches/"+itoa(ws[0].ID)+"/remove", nil); !strings.Contains(r.Header.Get("Location"), "notice=") {
		t.Fatalf("remove: %s", r.Header.Get("Location"))
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action LIKE 'github_watch.%'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("audit entries %d (%v)", n, err)
	}
}

// TestIntegrationsPage: the Slack connection with a test message that
// reaches (fake) Slack and is audited, endpoints and subscriptions by host
// only; admins only.
func TestIntegrationsPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fake := withIntegrations(t, b)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "resp@acme.example", org.ID, auth.RoleResponder)
	admin := b.signIn(t, "admin@acme.example")
	_, _, page := admin.page("/integrations")
	if !strings.Contains(page, `id="slack-mode">none<`) || strings.Contains(page, `id="slack-test"`) {
		t.Fatal("unconnected Slack on the page")
	}
	if r := admin.form("/integrations/slack/test", nil); !strings.Contains(r.Header.Get("Location"), "error=") {
		t.Fatalf("test while unconnected: %s", r.Header.Get("Location"))
	}
	admin.mustJSON(http.MethodPut, "/api/v1/integrations/slack", map[string]any{"bot_token": itToken, "signing_secret": itSecret, "default_channel": "C0ALERTS"}, http.StatusOK, nil)
	admin.mustJSON(http.MethodPut, "/api/v1/revocation-endpoint", map[string]any{"url": "https://revoke.acme.example/hook?token=s3cr3t"}, http.StatusOK, nil)
	_, _, page = admin.page("/integrations")
	if !strings.Contains(page, `id="slack-mode">bot<`) || !strings.Contains(page, "revoke.acme.example") || strings.Contains(page, "s3cr3t") {
		t.Fatal("the connected integrations page")
	}
	before := len(fake.Messages())
	if r := admin.form("/integrations/slack/test", nil); !strings.Contains(r.Header.Get("Location"), "notice=") {
		t.Fatalf("test message: %s", r.Header.Get("Location"))
	}
	workSlackTest(t, b)
	if len(fake.Messages()) != before+1 {
		t.Fatal("no test message reached Slack")
	}
	if st, _, _ := b.signIn(t, "resp@acme.example").page("/integrations"); st != http.StatusForbidden {
		t.Fatalf("responder integrations page = %d", st)
	}
}
