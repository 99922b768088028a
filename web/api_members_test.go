package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestInvitationsAndMembers invites people by link, accepts as a new user
// and as a signed-in one, and manages roles within the owner rules.
func TestInvitationsAndMembers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	owner := b.mustUser(t, "owner@acme.example", org.ID, auth.RoleOwner)
	b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	oc := b.signIn(t, "owner@acme.example")
	ac := b.signIn(t, "admin@acme.example")

	// An admin may not invite an owner.
	status, body := ac.do(http.MethodPost, "/api/v1/invitations", map[string]string{"email": "x@acme.example", "role": "owner"})
	if status != http.StatusForbidden || errorCode(t, body) != "forbidden" ||
		!strings.Contains(string(body), `"only an owner can invite an owner"`) {
		t.Fatalf("admin invites owner = %d %s", status, body)
	}
	status, body = ac.do(http.MethodPost, "/api/v1/invitations", map[string]string{"email": "not an address", "role": "viewer"})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "not an email address") {
		t.Fatalf("bad email = %d %s", status, body)
	}

	// A new person accepts by link and is signed in.
	var created invitationCreated
	ac.mustJSON(http.MethodPost, "/api/v1/invitations", map[string]string{"email": "New.Person@Acme.example", "role": "responder"}, http.StatusCreated, &created)
	if created.Invitation.Email != "new.person@acme.example" || !strings.HasPrefix(created.Link, "http://leakwatch.test/invite?token=lwi_") {
		t.Fatalf("invitation = %+v", created)
	}
	link, _ := url.Parse(created.Link)
	token := link.Query().Get("token")
	newcomer := b.client(t)
	status, body = newcomer.do(http.MethodPost, "/api/v1/invitations/accept", map[string]string{"token": token, "password": "short"})
	if status != http.StatusBadRequest {
		t.Fatalf("short password = %d %s", status, body)
	}
	var me meResponse
	newcomer.mustJSON(http.MethodPost, "/api/v1/invitations/accept", map[string]string{"token": token, "password": "a long enough password"}, http.StatusOK, &me)
	if me.OrgID != org.ID || me.Role != auth.RoleResponder || me.User.Email != "new.person@acme.example" {
		t.Fatalf("after accepting: %+v", me)
	}
	newcomer.csrf = me.CSRFToken
	newcomer.mustJSON(http.MethodGet, "/api/v1/keys", nil, http.StatusOK, nil)
	// The link works once.
	status, body = b.client(t).do(http.MethodPost, "/api/v1/invitations/accept", map[string]string{"token": token, "password": "another long password"})
	if status != http.StatusGone || errorCode(t, body) != "expired" {
		t.Fatalf("second use = %d %s", status, body)
	}
	// The new user can sign in with the chosen password.
	if status, _ := b.client(t).do(http.MethodPost, "/api/v1/session", map[string]string{"email": "new.person@acme.example", "password": "a long enough password"}); status != http.StatusOK {
		t.Fatalf("sign in after accepting = %d", status)
	}

	// An existing user of another organisation joins while signed in and
	// can switch between both.
	other := b.mustOrg(t, "globex")
	b.mustUser(t, "carol@globex.example", other.ID, auth.RoleOwner)
	cc := b.signIn(t, "carol@globex.example")
	oc.mustJSON(http.MethodPost, "/api/v1/invitations", map[string]string{"email": "carol@globex.example", "role": "viewer"}, http.StatusCreated, &created)
	link, _ = url.Parse(created.Link)
	// Holding the link is not enough to act as an existing account: the
	// inviting admin sees the link too.
	status, body = b.client(t).do(http.MethodPost, "/api/v1/invitations/accept", map[string]string{"token": link.Query().Get("token"), "password": "attacker chosen password"})
	if status != http.StatusConflict || errorCode(t, body) != "sign_in_first" {
		t.Fatalf("anonymous accept for an existing account = %d %s", status, body)
	}
	if _, err := b.auth.SignIn(t.Context(), "carol@globex.example", "attacker chosen password", "192.0.2.9"); err == nil {
		t.Fatal("the link holder set the existing account's password")
	}
	cc.mustJSON(http.MethodPost, "/api/v1/invitations/accept", map[string]string{"token": link.Query().Get("token")}, http.StatusOK, &me)
	if me.OrgID != org.ID || me.Role != auth.RoleViewer || len(me.Memberships) != 2 {
		t.Fatalf("carol after accepting: %+v", me)
	}
	cc.mustJSON(http.MethodPut, "/api/v1/session/org", map[string]any{"org_id": other.ID}, http.StatusOK, &me)
	if me.OrgID != other.ID || me.Role != auth.RoleOwner {
		t.Fatalf("carol after switching: %+v", me)
	}
	// A revoked invitation cannot be used.
	oc.mustJSON(http.MethodPost, "/api/v1/invitations", map[string]string{"email": "late@acme.example", "role": "viewer"}, http.StatusCreated, &created)
	oc.mustJSON(http.MethodDelete, "/api/v1/invitations/"+itoa(created.Invitation.ID), nil, http.StatusNoContent, nil)
	link, _ = url.Parse(created.Link)
	if status, _ := b.client(t).do(http.MethodPost, "/api/v1/invitations/accept", map[string]string{"token": link.Query().Get("token"), "password": "a long enough password"}); status != http.StatusGone {
		t.Fatalf("revoked invitation = %d", status)
	}

	// Roles: an admin cannot touch the owner; the last owner stays.
	var members page[auth.Membership]
	oc.mustJSON(http.MethodGet, "/api/v1/members", nil, http.StatusOK, &members)
	if len(members.Items) != 4 {
		t.Fatalf("%d members, want 4", len(members.Items))
	}
	if status, _ := ac.do(http.MethodPatch, "/api/v1/members/"+itoa(owner.ID), map[string]string{"role": "viewer"}); status != http.StatusForbidden {
		t.Fatalf("admin demotes owner = %d", status)
	}
	status, body = oc.do(http.MethodPatch, "/api/v1/members/"+itoa(owner.ID), map[string]string{"role": "admin"})
	if status != http.StatusConflict || errorCode(t, body) != "last_owner" {
		t.Fatalf("last owner demotes self = %d %s", status, body)
	}
	var m auth.Membership
	oc.mustJSON(http.MethodPatch, "/api/v1/members/"+itoa(me.User.ID), map[string]string{"role": "admin"}, http.StatusOK, &m)
	if m.Role != auth.RoleAdmin {
		t.Fatalf("promoted = %+v", m)
	}
	oc.mustJSON(http.MethodDelete, "/api/v1/members/"+itoa(me.User.ID), nil, http.StatusNoContent, nil)
	// Removed from acme, carol's session there no longer works.
	cc.mustJSON(http.MethodPut, "/api/v1/session/org", map[string]any{"org_id": org.ID}, http.StatusNotFound, nil)
}

// TestListsPaginate walks members, tokens and invitations two at a time.
func TestListsPaginate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "owner@acme.example", org.ID, auth.RoleOwner)
	c := b.signIn(t, "owner@acme.example")
	for i := range 4 {
		n := itoa(int64(i))
		b.mustUser(t, "m"+n+"@acme.example", org.ID, auth.RoleViewer)
		c.mustJSON(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "t" + n, "scope": "read"}, http.StatusCreated, nil)
		c.mustJSON(http.MethodPost, "/api/v1/invitations", map[string]string{"email": "i" + n + "@acme.example", "role": "viewer"}, http.StatusCreated, nil)
	}
	for path, want := range map[string]int{"/api/v1/members": 5, "/api/v1/tokens": 4, "/api/v1/invitations": 4} {
		seen := 0
		cursor := ""
		for pages := 0; ; pages++ {
			var p page[json.RawMessage]
			c.mustJSON(http.MethodGet, path+"?limit=2&cursor="+cursor, nil, http.StatusOK, &p)
			seen += len(p.Items)
			if p.NextCursor == "" || pages > 5 {
				break
			}
			cursor = p.NextCursor
		}
		if seen != want {
			t.Errorf("%s: paged through %d items, want %d", path, seen, want)
		}
	}
}
