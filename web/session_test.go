package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/internal/audit"
)

func urlEscape(s string) string { return url.QueryEscape(s) }

func TestSignInSessionsAndCSRF(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "alice@example.com", org.ID, "admin")

	anon := b.client(t)
	status, body := anon.do(http.MethodGet, "/api/v1/keys", nil)
	if status != http.StatusUnauthorized || errorCode(t, body) != "unauthenticated" {
		t.Fatalf("anonymous GET /api/v1/keys = %d %s", status, body)
	}
	status, body = anon.do(http.MethodPost, "/api/v1/session", map[string]string{"email": "alice@example.com", "password": "wrong password!!"})
	if status != http.StatusUnauthorized || errorCode(t, body) != "invalid_credentials" {
		t.Fatalf("wrong password = %d %s", status, body)
	}

	c := b.signIn(t, "Alice@Example.com")
	var me meResponse
	c.mustJSON(http.MethodGet, "/api/v1/me", nil, http.StatusOK, &me)
	if me.OrgID != org.ID || me.Role != "admin" || me.User.Email != "alice@example.com" {
		t.Fatalf("me = %+v", me)
	}
	// The cookie is HttpOnly and SameSite.
	req, _ := http.NewRequest(http.MethodPost, b.ts.URL+"/api/v1/session", strings.NewReader(`{"email":"alice@example.com","password":"`+testPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ck := resp.Cookies()
	if len(ck) != 1 || ck[0].Name != SessionCookie || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteLaxMode || ck[0].Expires.IsZero() {
		t.Fatalf("session cookie = %+v", ck)
	}

	// Unsafe requests need the CSRF token.
	csrf := c.csrf
	c.csrf = ""
	status, body = c.do(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "ci", "scope": "read"})
	if status != http.StatusForbidden || errorCode(t, body) != "csrf" {
		t.Fatalf("POST without CSRF token = %d %s", status, body)
	}
	c.csrf = csrf
	c.mustJSON(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "ci", "scope": "read"}, http.StatusCreated, nil)

	// Sign out everywhere ends this session and the other one.
	other := b.signIn(t, "alice@example.com")
	var ended map[string]int64
	c.mustJSON(http.MethodDelete, "/api/v1/sessions", nil, http.StatusOK, &ended)
	if ended["ended"] != 3 {
		t.Fatalf("ended %d sessions, want 3", ended["ended"])
	}
	if status, _ := other.do(http.MethodGet, "/api/v1/keys", nil); status != http.StatusUnauthorized {
		t.Fatalf("after sign-out everywhere, other session = %d", status)
	}
}

// TestCrossSiteRefused refuses unsafe requests whose Origin is another
// site, signed in or not (login CSRF).
func TestCrossSiteRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "alice@example.com", org.ID, "admin")
	for _, origin := range []string{"https://evil.example", "null"} {
		req, _ := http.NewRequest(http.MethodPost, b.ts.URL+"/signin", strings.NewReader("email=alice%40example.com&password="+url.QueryEscape(testPassword)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Fatalf("cross-site sign-in from %s = %d", origin, resp.StatusCode)
		}
	}
	// The same origin is fine.
	req, _ := http.NewRequest(http.MethodPost, b.ts.URL+"/signin", strings.NewReader("email=alice%40example.com&password="+url.QueryEscape(testPassword)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.ts.URL)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin sign-in = %d", resp.StatusCode)
	}
}

func TestSignInThrottled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "bob@example.com", org.ID, "viewer")
	c := b.client(t)
	for i := range 5 {
		status, _ := c.do(http.MethodPost, "/api/v1/session", map[string]string{"email": "bob@example.com", "password": "guess number " + string(rune('a'+i))})
		if status != http.StatusUnauthorized {
			t.Fatalf("attempt %d = %d", i, status)
		}
	}
	// Even the right password is refused now.
	status, body := c.do(http.MethodPost, "/api/v1/session", map[string]string{"email": "bob@example.com", "password": testPassword})
	if status != http.StatusTooManyRequests || errorCode(t, body) != "throttled" {
		t.Fatalf("after 5 failures = %d %s", status, body)
	}
}

// TestSigninLinkOneTime: opening a sign-in link (as a chat unfurler or
// mail scanner would) spends nothing; posting it signs in once.
func TestSigninLinkOneTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	u := b.mustUser(t, "alice@example.com", org.ID, "owner")
	link, err := b.auth.NewLoginLink(t.Context(), audit.System, u.ID, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := b.client(t)
	for range 2 {
		status, _, page := c.page("/signin/link?token=" + link)
		if status != http.StatusOK || !strings.Contains(page, `name="token" value="`+link+`"`) {
			t.Fatalf("GET link = %d", status)
		}
	}
	if resp := c.form("/signin/link", map[string]string{"token": link}); resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("POST link = %d", resp.StatusCode)
	}
	c.mustJSON(http.MethodGet, "/api/v1/me", nil, http.StatusOK, nil)
	if resp := b.client(t).form("/signin/link", map[string]string{"token": link}); resp.StatusCode != http.StatusGone {
		t.Fatalf("second POST = %d", resp.StatusCode)
	}
}
