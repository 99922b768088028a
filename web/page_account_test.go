package web

import (
	"context"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestAccountSessionsAndTokens: the account page lists the user's live
// sessions (this one marked, hostile user agents as text) and only the API
// tokens the user created; only admins get the token forms.
func TestAccountSessionsAndTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	admin := b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "other@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	if _, _, err := b.auth.NewSession(ctx, admin.ID, org.ID, "203.0.113.9", `<script>alert("ua")</script>`); err != nil {
		t.Fatal(err)
	}
	c, other, v := b.signIn(t, "admin@acme.example"), b.signIn(t, "other@acme.example"), b.signIn(t, "view@acme.example")
	for cl, name := range map[*client]string{c: "ci-mine", other: "ci-theirs"} {
		if r := cl.form("/tokens", map[string]string{"name": name, "scope": "read"}); r.StatusCode != 200 {
			t.Fatalf("create token %s = %d", name, r.StatusCode)
		}
	}
	_, _, page := c.page("/account")
	if n := strings.Count(page, `<tr id="session-`); n != 2 {
		t.Fatalf("%d sessions listed, want 2", n)
	}
	if strings.Count(page, "(this browser)") != 1 || strings.Contains(page, `<script>alert("ua")`) || !strings.Contains(page, "&lt;script&gt;") || !strings.Contains(page, "203.0.113.9") {
		t.Fatal("sessions: this browser unmarked, or a user agent unescaped")
	}
	if !strings.Contains(page, "ci-mine") || strings.Contains(page, "ci-theirs") || !strings.Contains(page, `id="token-form"`) {
		t.Fatal("the admin's tokens")
	}
	_, _, vp := v.page("/account")
	if strings.Contains(vp, `id="token-form"`) || strings.Contains(vp, "/revoke") || strings.Contains(vp, "ci-") {
		t.Fatal("the viewer's account page offers token forms or others' tokens")
	}
	if !strings.Contains(vp, `id="signout-all"`) || strings.Count(vp, `<tr id="session-`) != 1 {
		t.Fatal("the viewer's sessions")
	}
}
