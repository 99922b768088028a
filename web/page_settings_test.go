package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestSettingsOrgName: admins rename the organisation from /settings
// through the organisation store's checks and audit; a hostile name
// renders as text; viewers see the name without the form.
func TestSettingsOrgName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	c, v := b.signIn(t, "admin@acme.example"), b.signIn(t, "view@acme.example")
	const hostile = `Acme <script>alert(1)</script>`
	if got := formResult(t, c, "/settings/org", map[string]string{"name": hostile}); !strings.HasPrefix(got, "Renamed the organisation") {
		t.Fatalf("rename: %s", got)
	}
	o, err := b.orgs.ByID(ctx, org.ID)
	if err != nil || o.Name != hostile {
		t.Fatalf("name %q (%v)", o.Name, err)
	}
	for _, cl := range []*client{c, v} {
		_, _, page := cl.page("/settings")
		if strings.Contains(page, "<script>alert(1)") || !strings.Contains(page, "Acme &lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Fatal("the name is not escaped")
		}
	}
	if got := formResult(t, c, "/settings/org", map[string]string{"name": "  "}); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("blank name: %s", got)
	}
	if _, _, page := v.page("/settings"); strings.Contains(page, `id="org-form"`) {
		t.Fatal("the viewer sees the rename form")
	}
	if r := v.form("/settings/org", map[string]string{"name": "mine"}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer rename = %d", r.StatusCode)
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE org_id = $1 AND action = 'org.update'`, org.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d org.update entries (%v)", n, err)
	}
}
