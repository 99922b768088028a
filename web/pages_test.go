package web

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
)

func (c *client) page(path string) (int, string, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// TestPages signs in through the form and walks the pages: incidents are
// scoped to the current organisation, switching organisation changes
// them, stale keys are flagged, tokens are shown once.
func TestPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acme := b.mustOrg(t, "acme")
	globex := b.mustOrg(t, "globex")
	b.mustUser(t, "alice@example.com", acme.ID, auth.RoleAdmin)
	u, err := b.auth.UserByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.auth.AddMember(ctx, audit.System, globex.ID, u.ID, auth.RoleViewer); err != nil {
		t.Fatal(err)
	}
	// One incident in each organisation.
	for _, o := range []struct {
		id   int64
		name string
	}{{acme.ID, "acme-deploy-key"}, {globex.ID, "globex-billing-key"}} {
		k, err := b.keys.Register(ctx, audit.System, o.id, keys.Params{Name: o.name, Fingerprint: mustParse(t, fingerprint(t, "ghp_"+o.name+"Zq8Wm3Xr7Tn2Vb5Kc9Hd4Lf"))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, `INSERT INTO incidents (org_id, key_id, first_seen_at, last_seen_at) VALUES ($1, $2, now(), now())`, o.id, k.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.pool.Exec(ctx, `UPDATE keys SET created_at = now() - interval '200 days' WHERE name = 'acme-deploy-key'`); err != nil {
		t.Fatal(err)
	}

	c := b.client(t)
	status, loc, _ := c.page("/incidents")
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin?next=") {
		t.Fatalf("anonymous /incidents = %d %s", status, loc)
	}
	if resp := c.form("/signin", map[string]string{"email": "alice@example.com", "password": "wrong password!!"}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password = %d", resp.StatusCode)
	}
	resp := c.form("/signin", map[string]string{"email": "alice@example.com", "password": testPassword, "next": "/keys"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/keys" {
		t.Fatalf("sign-in = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	sess, err := b.pool.Query(ctx, `SELECT csrf_token FROM sessions`)
	if err != nil {
		t.Fatal(err)
	}
	for sess.Next() {
		if err := sess.Scan(&c.csrf); err != nil {
			t.Fatal(err)
		}
	}
	sess.Close()

	_, _, page := c.page("/incidents")
	if !strings.Contains(page, "acme-deploy-key") || strings.Contains(page, "globex-billing-key") {
		t.Fatalf("acme incidents page:\n%s", page)
	}
	_, _, page = c.page("/keys")
	if !strings.Contains(page, `class="stale"`) || !strings.Contains(page, "never rotated") || !strings.Contains(page, "register-form") {
		t.Fatalf("keys page lacks the stale flag or the form:\n%s", page)
	}

	// A form without the CSRF token is refused.
	csrf := c.csrf
	c.csrf = ""
	if resp := c.form("/orgs/switch", map[string]string{"org_id": itoa(globex.ID)}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("switch without CSRF = %d", resp.StatusCode)
	}
	c.csrf = csrf
	if resp := c.form("/orgs/switch", map[string]string{"org_id": itoa(globex.ID)}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("switch = %d", resp.StatusCode)
	}
	_, _, page = c.page("/incidents")
	if strings.Contains(page, "acme-deploy-key") || !strings.Contains(page, "globex-billing-key") {
		t.Fatalf("globex incidents page:\n%s", page)
	}
	// A viewer sees no register form and may not open the tokens page.
	_, _, page = c.page("/keys")
	if strings.Contains(page, "register-form") {
		t.Fatal("viewer sees the register form")
	}
	if status, _, _ := c.page("/tokens"); status != http.StatusForbidden {
		t.Fatalf("viewer /tokens = %d", status)
	}

	// Tokens: created on the page, the value shown once.
	c.form("/orgs/switch", map[string]string{"org_id": itoa(acme.ID)})
	req, _ := http.NewRequest(http.MethodPost, c.base+"/tokens", strings.NewReader("name=ci&scope=write&csrf_token="+urlEscape(c.csrf)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(tr.Body)
	tr.Body.Close()
	i := strings.Index(string(body), auth.TokenPrefix)
	if tr.StatusCode != http.StatusOK || i < 0 || tr.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token page = %d", tr.StatusCode)
	}
	value := string(body[i : i+len(auth.TokenPrefix)+43])
	_, _, page = c.page("/tokens")
	if strings.Contains(page, value) {
		t.Fatal("the token value is shown again")
	}
	var n int
	tc := b.tokenClient(t, value)
	tc.mustJSON(http.MethodGet, "/api/v1/keys", nil, http.StatusOK, nil)
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM api_tokens WHERE last_used_at > now() - interval '1 minute'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("last_used_at not recorded: %d %v", n, err)
	}

	// Sign out ends the session.
	c.form("/signout", nil)
	if status, _, _ := c.page("/keys"); status != http.StatusSeeOther {
		t.Fatalf("after sign-out /keys = %d", status)
	}
}

// TestMembersPage invites through the page (link shown once), changes a
// role and removes a member, with the owner rules enforced for admins.
func TestMembersPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	org := b.mustOrg(t, "acme")
	owner := b.mustUser(t, "owner@acme.example", org.ID, auth.RoleOwner)
	bob := b.mustUser(t, "bob@acme.example", org.ID, auth.RoleViewer)
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	c := b.signIn(t, "admin@acme.example")

	req, _ := http.NewRequest(http.MethodPost, c.base+"/members/invite", strings.NewReader("email=new%40acme.example&role=responder&csrf_token="+urlEscape(c.csrf)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "http://leakwatch.test/invite?token=lwi_") {
		t.Fatalf("invite page = %d:\n%s", resp.StatusCode, body)
	}
	_, _, page := c.page("/members")
	if strings.Contains(page, "invite?token=") || !strings.Contains(page, "new@acme.example") {
		t.Fatal("the invitation link is shown again, or the invitation is not listed")
	}
	// An admin cannot make anyone an owner or touch the owner.
	if r := c.form("/members/"+itoa(bob.ID)+"/role", map[string]string{"role": "owner"}); !strings.Contains(r.Header.Get("Location"), "error=") {
		t.Fatalf("admin grants owner: %s", r.Header.Get("Location"))
	}
	if r := c.form("/members/"+itoa(owner.ID)+"/remove", nil); !strings.Contains(r.Header.Get("Location"), "error=") {
		t.Fatalf("admin removes owner: %s", r.Header.Get("Location"))
	}
	c.form("/members/"+itoa(bob.ID)+"/role", map[string]string{"role": "responder"})
	if m, err := b.auth.Membership(ctx, org.ID, bob.ID); err != nil || m.Role != auth.RoleResponder {
		t.Fatalf("bob = %+v %v", m, err)
	}
	c.form("/members/"+itoa(bob.ID)+"/remove", nil)
	if _, err := b.auth.Membership(ctx, org.ID, bob.ID); err == nil {
		t.Fatal("bob is still a member")
	}
	if m, err := b.auth.Membership(ctx, org.ID, owner.ID); err != nil || m.Role != auth.RoleOwner {
		t.Fatalf("owner = %+v %v", m, err)
	}
}

// TestSigninFirstRunHint: until an organisation exists nobody can sign in,
// so the sign-in page names the command that creates the first one.
func TestSigninFirstRunHint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	page := func() string {
		resp, err := http.Get(b.ts.URL + "/signin")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if p := page(); !strings.Contains(p, "leakwatch orgs create acme --owner you@example.com") {
		t.Fatalf("no first-run hint on a new installation:\n%s", p)
	}
	b.mustOrg(t, "acme")
	if p := page(); strings.Contains(p, `id="first-run"`) {
		t.Fatalf("first-run hint shown although an organisation exists")
	}
}
