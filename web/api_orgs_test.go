package web

import (
	"context"
	"net/http"
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestOrgUpdateAllOrNothing: a PATCH with one bad field changes nothing;
// a good one commits with its audit entry.
func TestOrgUpdateAllOrNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "owner@example.com", org.ID, auth.RoleOwner)
	c := b.signIn(t, "owner@example.com")
	audits := func() int {
		var n int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'org.update'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		body   map[string]any
		status int
		code   string
	}{
		{map[string]any{"name": "renamed", "default_revocation_url": "ftp://bad"}, http.StatusUnprocessableEntity, "invalid_url"},
		{map[string]any{"name": "renamed", "default_max_age_days": -1}, http.StatusBadRequest, "invalid"},
		{map[string]any{"name": "renamed", "slack_webhook_url": "gopher://x"}, http.StatusUnprocessableEntity, "invalid_url"},
		{map[string]any{"default_revocation_url": "https://ok.example/revoke", "name": ""}, http.StatusBadRequest, "invalid"},
	} {
		body := tc.body
		status, out := c.do(http.MethodPatch, "/api/v1/org", body)
		if status != tc.status || errorCode(t, out) != tc.code {
			t.Fatalf("PATCH %v = %d %s", body, status, out)
		}
		o, err := b.orgs.ByID(ctx, org.ID)
		if err != nil || o.Name != "acme" || o.DefaultRevocationURL != "" || o.DefaultMaxAgeDays != 90 || o.SlackConfigured {
			t.Fatalf("after refused PATCH %v: %+v %v", body, o, err)
		}
	}
	if n := audits(); n != 0 {
		t.Fatalf("%d org.update entries after refused changes", n)
	}
	var got orgJSON
	c.mustJSON(http.MethodPatch, "/api/v1/org", map[string]any{"name": "renamed", "default_revocation_url": "https://ok.example/revoke", "default_max_age_days": 30}, http.StatusOK, &got)
	if got.Name != "renamed" || got.DefaultRevocationURL != "https://ok.example/revoke" || got.DefaultMaxAgeDays != 30 {
		t.Fatalf("PATCH = %+v", got)
	}
	if n := audits(); n != 1 {
		t.Fatalf("%d org.update entries, want 1", n)
	}

	// With the audit log refusing writes, the change does not happen.
	if _, err := b.pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	if status, _ := c.do(http.MethodPatch, "/api/v1/org", map[string]any{"name": "unaudited"}); status != http.StatusInternalServerError {
		t.Fatalf("PATCH without audit = %d", status)
	}
	if o, _ := b.orgs.ByID(ctx, org.ID); o.Name != "renamed" {
		t.Fatalf("renamed without an audit entry to %q", o.Name)
	}
}

// TestOrgDeleteAudited: deleting an organisation and its audit entry commit
// together.
func TestOrgDeleteAudited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	org := b.mustOrg(t, "doomed")
	b.mustUser(t, "owner@example.com", org.ID, auth.RoleOwner)
	c := b.signIn(t, "owner@example.com")
	if _, err := b.pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	if status, _ := c.do(http.MethodDelete, "/api/v1/org?confirm=doomed", nil); status != http.StatusInternalServerError {
		t.Fatalf("delete without audit = %d", status)
	}
	if _, err := b.orgs.ByID(ctx, org.ID); err != nil {
		t.Fatalf("deleted without an audit entry: %v", err)
	}
	if _, err := b.pool.Exec(ctx, `DROP TRIGGER refuse ON audit_log`); err != nil {
		t.Fatal(err)
	}
	c.mustJSON(http.MethodDelete, "/api/v1/org?confirm=doomed", nil, http.StatusNoContent, nil)
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'org.delete' AND org_id = $1 AND details->>'name' = 'doomed'`, org.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d org.delete entries, %v", n, err)
	}
}
