package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestMembershipWalk: after each role change and removal, every session and
// token of the affected member is tried on every write route (API and
// form). Each must be let through exactly when the member's new role, capped
// by the token's scope, allows the route, and refused (401/403) otherwise:
// a token never acts above its creator's current role.
func TestMembershipWalk(t *testing.T) {
	t.Parallel()
	b := setup(t)
	withIntegrations(t, b)
	b.srv.github = ghcrawler.NewFeeds(b.pool)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "owner@acme.example", org.ID, auth.RoleOwner)
	owner := b.signIn(t, "owner@acme.example")

	type route struct{ method, path, role string }
	var routes []route
	for _, op := range apiOperations(t, b) {
		if op.Method != http.MethodGet && auth.Role(op.Role).AtLeast(auth.RoleViewer) {
			routes = append(routes, route{op.Method, op.Path, op.Role})
		}
	}
	for p, role := range formRoutes {
		if auth.Role(role).AtLeast(auth.RoleViewer) {
			routes = append(routes, route{http.MethodPost, p, role})
		}
	}
	if len(routes) < 40 {
		t.Fatalf("only %d write routes", len(routes))
	}
	// Routes that need a person, not a token, on top of their role.
	sessionOnly := map[string]bool{"POST /api/v1/tokens": true, "POST /tokens": true}

	for i, tc := range []struct {
		from, to auth.Role // to "": removed
	}{
		{auth.RoleAdmin, auth.RoleResponder},
		{auth.RoleAdmin, auth.RoleViewer},
		{auth.RoleAdmin, ""},
		{auth.RoleOwner, auth.RoleAdmin},
		{auth.RoleOwner, auth.RoleViewer},
		{auth.RoleOwner, ""},
	} {
		name := fmt.Sprintf("%s→%s", tc.from, tc.to)
		if tc.to == "" {
			name = string(tc.from) + "→removed"
		}
		email := fmt.Sprintf("member%d@acme.example", i)
		u := b.mustUser(t, email, org.ID, tc.from)
		sessions := []*client{b.signIn(t, email), b.signIn(t, email)}
		var read, write tokenCreated
		sessions[0].mustJSON(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "read " + name, "scope": auth.ScopeRead}, http.StatusCreated, &read)
		sessions[0].mustJSON(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "write " + name, "scope": auth.ScopeWrite}, http.StatusCreated, &write)

		// Every token list names the creator.
		var list page[auth.Token]
		owner.mustJSON(http.MethodGet, "/api/v1/tokens", nil, http.StatusOK, &list)
		if len(list.Items) == 0 || list.Items[0].ID != write.Token.ID || list.Items[0].CreatedByEmail != email {
			t.Fatalf("%s: token list %+v", name, list.Items)
		}
		if status, _, html := owner.page("/tokens"); status != http.StatusOK || !strings.Contains(html, email) {
			t.Fatalf("%s: tokens page = %d, lacks the creator %s", name, status, email)
		}

		if tc.to == "" {
			owner.mustJSON(http.MethodDelete, "/api/v1/members/"+itoa(u.ID), nil, http.StatusNoContent, nil)
		} else {
			owner.mustJSON(http.MethodPatch, "/api/v1/members/"+itoa(u.ID), map[string]string{"role": string(tc.to)}, http.StatusOK, nil)
		}

		capped := func(r auth.Role, max auth.Role) auth.Role {
			if r == "" || !r.AtLeast(max) {
				return r
			}
			return max
		}
		type cred struct {
			name  string
			c     *client
			role  auth.Role
			token bool
		}
		creds := []cred{
			{"session 1", sessions[0], tc.to, false},
			{"session 2", sessions[1], tc.to, false},
			{"read token", b.tokenClient(t, read.Value), capped(tc.to, auth.RoleViewer), true},
			{"write token", b.tokenClient(t, write.Value), capped(tc.to, auth.RoleAdmin), true},
		}
		for _, cr := range creds {
			w := walker{name: cr.name, c: cr.c}
			for _, r := range routes {
				// Ids that exist nowhere and bodies no handler accepts: a
				// request let through ends in a 4xx of its handler and
				// changes nothing.
				path := pathParam.ReplaceAllString(r.path, "999999999")
				ctype, body := "text/plain", []byte("x")
				if !strings.HasPrefix(r.path, "/api/") {
					ctype, body = "application/x-www-form-urlencoded", []byte("")
				}
				status, loc, out := w.send(t, r.method, path, ctype, body)
				refused := status == http.StatusUnauthorized || status == http.StatusForbidden ||
					(status == http.StatusSeeOther && (strings.HasPrefix(loc, "/signin") || strings.HasPrefix(loc, "/orgs")))
				allowed := cr.role.AtLeast(auth.Role(r.role)) && !(cr.token && sessionOnly[r.method+" "+r.path])
				if refused == allowed || status >= 500 {
					t.Errorf("%s, %s: %s %s = %d %q %.120s; want allowed=%v", name, cr.name, r.method, r.path, status, loc, out, allowed)
				}
			}
		}

		// The attacks that were reproduced, step by step.
		wt := b.tokenClient(t, write.Value)
		if tc.to == "" {
			if status, _ := wt.do(http.MethodPost, "/api/v1/invitations", map[string]string{"email": email, "role": "admin"}); status != http.StatusUnauthorized {
				t.Errorf("%s: removed member's token invited itself back: %d", name, status)
			}
		} else if status, _ := wt.do(http.MethodPatch, "/api/v1/members/"+itoa(u.ID), map[string]string{"role": string(tc.from)}); status != http.StatusForbidden {
			t.Errorf("%s: demoted member's token restored its role: %d", name, status)
		}
		m, err := b.auth.Membership(t.Context(), org.ID, u.ID)
		if tc.to == "" && err == nil || tc.to != "" && (err != nil || m.Role != tc.to) {
			t.Fatalf("%s: membership afterwards %+v %v", name, m, err)
		}
	}
}
