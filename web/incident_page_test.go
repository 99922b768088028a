package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/audit"
)

// TestIncidentPage works an incident through the dashboard's forms:
// acknowledge, assign, contain, rotate, recover and close with a review,
// then reopen; every step shows on the page and in the audit log. Viewers
// see no forms and are refused; another organisation's incident is not
// found; attacker-controlled text (an issue title) is escaped; a refused
// transition comes back as a message on the page.
func TestIncidentPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIncidentFixture(t)
	b, svc, ks, org, admin, k := f.testBundle, f.svc, f.rotating, f.org, f.admin, f.key
	const evil = `<script>alert(1)</script>`
	if err := svc.Record(ctx, []crawler.Finding{{KeyID: k.ID, OrgID: org.ID, Fingerprint: k.Fingerprint, Source: "github",
		URL: "https://github.com/o/r/issues/7#issuecomment-1", Repo: "o/r", Title: "Build fails " + evil, Actor: "mallory",
		Line: 3, Column: 9, Encoding: "plain", Preview: "TOKEN=ghp_********", Reach: 4200,
		EventAt: time.Now().Add(-time.Minute), DetectedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	var id string
	if err := b.pool.QueryRow(ctx, `SELECT id::text FROM incidents`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	path := "/incidents/" + id
	resp, view, outsider := b.signIn(t, "resp@acme.example"), b.signIn(t, "view@acme.example"), b.signIn(t, "resp@other.example")

	status, _, page := resp.page(path)
	if status != http.StatusOK {
		t.Fatalf("page = %d", status)
	}
	for _, want := range []string{"deploy", "identified", "critical", "mallory", "o/r", "reach 4200", "TOKEN=ghp_********", `value="acknowledge"`, `value="revoke"`, "&lt;script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, evil) {
		t.Fatal("the issue title is not escaped")
	}
	if _, _, list := resp.page("/incidents"); !strings.Contains(list, `href="`+path+`?org=`+strconv.FormatInt(org.ID, 10)+`"`) {
		t.Error("the incident list does not link the incident page")
	}

	// Viewers read, without forms, and cannot act; other organisations see nothing.
	if _, _, vp := view.page(path); strings.Contains(vp, `value="acknowledge"`) || !strings.Contains(vp, "deploy") {
		t.Error("viewer page shows action forms or lacks the incident")
	}
	if r := view.form(path+"/act", map[string]string{"action": "acknowledge"}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer acknowledge = %d", r.StatusCode)
	}
	if s, _, _ := outsider.page(path); s != http.StatusNotFound {
		t.Fatalf("other organisation's page = %d", s)
	}
	if r := outsider.form(path+"/act", map[string]string{"action": "acknowledge"}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("other organisation acknowledge = %d", r.StatusCode)
	}
	if r := resp.form(path+"/act", map[string]string{"action": "accept_risk", "reason": "x"}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("responder accept risk = %d", r.StatusCode)
	}

	act := func(values map[string]string) string {
		t.Helper()
		r := resp.form(path+"/act", values)
		loc := r.Header.Get("Location")
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, path+"?") {
			t.Fatalf("%s = %d %q", values["action"], r.StatusCode, loc)
		}
		u, _ := url.Parse(loc)
		if e := u.Query().Get("error"); e != "" {
			return "error: " + e
		}
		return u.Query().Get("notice")
	}
	if got := act(map[string]string{"action": "acknowledge"}); got != "Acknowledged." {
		t.Fatalf("acknowledge: %s", got)
	}
	if got := act(map[string]string{"action": "assign", "user_id": itoa(admin.ID)}); got != "Assigned." {
		t.Fatalf("assign: %s", got)
	}
	if got := act(map[string]string{"action": "recover"}); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("recover before containment: %s, want a refusal", got)
	}
	if got := act(map[string]string{"action": "contain", "note": "disabled in the console"}); got != "Marked contained." {
		t.Fatalf("contain: %s", got)
	}
	_, _, page = resp.page(path)
	for _, want := range []string{"contained", "admin@acme.example", "disabled in the console", "acknowledged"} {
		if !strings.Contains(page, want) {
			t.Errorf("after containment the page lacks %q", want)
		}
	}
	if _, err := ks.Rotate(ctx, audit.System, org.ID, k.ID, mustParse(t, fingerprint(t, secrets[1]))); err != nil {
		t.Fatal(err)
	}
	if got := act(map[string]string{"action": "recover", "note": "deployed"}); got != "Recovery confirmed." {
		t.Fatalf("recover: %s", got)
	}
	if got := act(map[string]string{"action": "close", "root_cause": "token in CI log"}); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("close without a full review: %s, want a refusal", got)
	}
	if got := act(map[string]string{"action": "close", "root_cause": "token in CI log", "leak_vector": "issue comment", "follow_ups": "mask CI output"}); got != "Closed with the review." {
		t.Fatalf("close: %s", got)
	}
	_, _, page = resp.page(path)
	for _, want := range []string{"closed", "token in CI log", "mask CI output", `value="reopen"`} {
		if !strings.Contains(page, want) {
			t.Errorf("closed page lacks %q", want)
		}
	}
	if got := act(map[string]string{"action": "reopen", "reason": "seen again"}); got != "Reopened." {
		t.Fatalf("reopen: %s", got)
	}
	var audited int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action LIKE 'incident.%'`).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	// acknowledge, assign, contain, recover, close, reopen; refusals are not audited.
	if audited != 6 {
		t.Fatalf("%d incident actions audited, want 6", audited)
	}
}
