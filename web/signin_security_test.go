package web

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestSignInRedirect: after sign-in the browser goes to next only if it is
// a path of this site; every way out goes to the default page.
func TestSignInRedirect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "alice@example.com", org.ID, auth.RoleAdmin)
	for _, tc := range []struct{ next, want string }{
		{"/keys", "/keys"},
		{"/incidents/7?state=open", "/incidents/7?state=open"},
		{"/invite?token=lwi_abc", "/invite?token=lwi_abc"},
		{"", "/incidents"},
		{"/\t/evil.example/", "/incidents"},
		{"/\n/evil.example/", "/incidents"},
		{"/\r\n/evil.example/", "/incidents"},
		{"//evil.example/", "/incidents"},
		{"/\\evil.example/", "/incidents"},
		{"/\\/evil.example/", "/incidents"},
		{"\\\\evil.example", "/incidents"},
		{" //evil.example", "/incidents"},
		{"https://evil.example/", "/incidents"},
		{"javascript:alert(1)", "/incidents"},
		{"evil.example", "/incidents"},
		{"/\u2028/evil.example", "/incidents"},
	} {
		c := b.client(t)
		resp := c.form("/signin", map[string]string{"email": "alice@example.com", "password": testPassword, "next": tc.next})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.want {
			t.Errorf("next=%q: %d Location %q, want %q", tc.next, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
	}
	// A NUL or invalid UTF-8 is refused before sign-in is even tried.
	for _, next := range []string{"/\x00/evil.example/", "/\xff/evil.example"} {
		resp := b.client(t).form("/signin", map[string]string{"email": "alice@example.com", "password": testPassword, "next": next})
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("next=%q: %d Location %q, want 400", next, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// TestSignInThrottleThroughServer: parallel guesses against the real server
// get exactly the allowed number of password checks.
func TestSignInThrottleThroughServer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "alice@example.com", org.ID, auth.RoleAdmin)
	for _, tc := range []struct {
		name        string
		n           int
		email       func(i int) string
		wantChecked int
	}{
		{"one account", 40, func(int) string { return "alice@example.com" }, 5},
		// The first case left 5 failures on this IP: 15 more fit under 20.
		{"many accounts", 100, func(i int) string { return fmt.Sprintf("u%d@example.com", i) }, 15},
	} {
		codes := make(chan int, tc.n)
		var wg sync.WaitGroup
		for i := range tc.n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, body := b.client(t).do(http.MethodPost, "/api/v1/session", map[string]string{"email": tc.email(i), "password": "a wrong guess!"})
				if status >= 400 {
					errorCode(t, body)
				}
				codes <- status
			}()
		}
		wg.Wait()
		close(codes)
		got := map[int]int{}
		for c := range codes {
			got[c]++
		}
		if got[http.StatusUnauthorized] != tc.wantChecked || got[http.StatusTooManyRequests] != tc.n-tc.wantChecked {
			t.Errorf("%s: answers %v, want %d × 401 and the rest 429", tc.name, got, tc.wantChecked)
		}
	}
}
