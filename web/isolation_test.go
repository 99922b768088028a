package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
)

var roleOrder = map[string]int{"public": 0, "user": 1, "viewer": 2, "responder": 3, "admin": 4, "owner": 5}

// TestIsolationWalk walks every API route, and every page, as each role of
// another organisation (and as its API tokens, and anonymously), aimed at
// the victim organisation's objects. Nothing of the victim may appear in any
// reply, nothing may succeed below its documented role, no request naming a
// victim object may succeed, and afterwards the victim is unchanged.
func TestIsolationWalk(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	// The victim.
	victim := b.mustOrg(t, "victim-org")
	vOwner := b.mustUser(t, "victim-owner@victim.example", victim.ID, auth.RoleOwner)
	vKey, err := b.keys.Register(ctx, audit.System, victim.ID, keys.Params{Name: "victim-key", Fingerprint: mustParse(t, fingerprint(t, secrets[0])), Owner: "victim-team"})
	if err != nil {
		t.Fatal(err)
	}
	_, vToken, err := b.auth.CreateToken(ctx, audit.System, victim.ID, vOwner.ID, "victim-token", auth.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	_, vInv, err := b.auth.Invite(ctx, audit.System, victim.ID, vOwner.ID, "victim-invitee@victim.example", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	vc := b.signIn(t, "victim-owner@victim.example")
	vc.mustJSON(http.MethodPatch, "/api/v1/keys/"+itoa(vKey.ID), map[string]any{"notes": "victim-notes"}, http.StatusOK, nil)
	markers := []string{"victim-org", "victim-key", "victim-owner", "victim-team", "victim-token", "victim-invitee", "victim-notes", vKey.Fingerprint, vToken.Display}

	// The attacker organisation, with every role and both token scopes.
	attacker := b.mustOrg(t, "attacker-org")
	actors := map[string]*client{"anonymous": b.client(t)}
	actorRole := map[string]string{"anonymous": "public"}
	var attackerOwner auth.User
	for _, r := range []auth.Role{auth.RoleOwner, auth.RoleAdmin, auth.RoleResponder, auth.RoleViewer} {
		email := string(r) + "@attacker.example"
		u := b.mustUser(t, email, attacker.ID, r)
		if r == auth.RoleOwner {
			attackerOwner = u
		}
		actors[string(r)] = b.signIn(t, email)
		actorRole[string(r)] = string(r)
	}
	for _, scope := range []string{auth.ScopeRead, auth.ScopeWrite} {
		value, _, err := b.auth.CreateToken(ctx, audit.System, attacker.ID, attackerOwner.ID, "attacker "+scope, scope)
		if err != nil {
			t.Fatal(err)
		}
		actors["token-"+scope] = b.tokenClient(t, value)
		actorRole["token-"+scope] = map[string]string{auth.ScopeRead: "viewer", auth.ScopeWrite: "admin"}[scope]
	}
	// A signed-in user with no organisation at all.
	b.mustUser(t, "nobody@example.com", 0, "")
	actors["no-org"] = b.signIn(t, "nobody@example.com")
	actorRole["no-org"] = "user"

	// Documented least roles.
	var doc struct {
		Paths map[string]map[string]struct {
			Role string `json:"x-leakwatch-role"`
		} `json:"paths"`
	}
	_, raw := b.client(t).do(http.MethodGet, "/api/v1/openapi.json", nil)
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}

	ids := map[string]string{":id": "", ":user_id": itoa(vOwner.ID)}
	idFor := func(path string) string {
		switch {
		case strings.HasPrefix(path, "/api/v1/keys/"), strings.HasPrefix(path, "/keys/"):
			return itoa(vKey.ID)
		case strings.HasPrefix(path, "/api/v1/tokens/"), strings.HasPrefix(path, "/tokens/"):
			return itoa(vToken.ID)
		case strings.HasPrefix(path, "/api/v1/invitations/"):
			return itoa(vInv.ID)
		}
		return "999999"
	}
	// Bodies aimed at the victim where a body can name it.
	bodies := map[string]any{
		"POST /api/v1/session":            map[string]string{"email": "victim-owner@victim.example", "password": "not the password"},
		"PUT /api/v1/session/org":         map[string]any{"org_id": victim.ID},
		"POST /api/v1/orgs":               map[string]string{"name": "victim-org"},
		"PATCH /api/v1/org":               map[string]any{"name": "victim-org", "default_max_age_days": 1},
		"PATCH /api/v1/members/:user_id":  map[string]string{"role": "viewer"},
		"POST /api/v1/invitations":        map[string]string{"email": "spy@attacker.example", "role": "owner"},
		"POST /api/v1/invitations/accept": map[string]string{"token": "lwi_forged", "password": "a long enough password"},
		"POST /api/v1/tokens":             map[string]string{"name": "t", "scope": "write"},
		"POST /api/v1/keys":               map[string]any{"name": "attacker key", "fingerprint": fingerprint(t, secrets[2])},
		"PATCH /api/v1/keys/:id":          map[string]any{"name": "stolen"},
		"POST /api/v1/keys/:id/rotate":    map[string]any{"fingerprint": fingerprint(t, secrets[1])},
	}
	// Routes that end the caller's own session are tested elsewhere.
	// The live event stream never ends; TestIncidentEventsIsolated covers it.
	skip := map[string]bool{"DELETE /api/v1/session": true, "DELETE /api/v1/sessions": true, "POST /signout": true,
		"GET /incidents/events": true, "POST /account/signout-all": true, "POST /account/password": true}

	routes := 0
	for _, r := range b.srv.echo.Routes() {
		route := r.Method + " " + r.Path
		if skip[route] || r.Method == "echo_route_not_found" || strings.HasPrefix(r.Path, "/static") {
			continue
		}
		routes++
		path := r.Path
		targetsVictim := false
		for p := range ids {
			if strings.Contains(path, p) {
				id := ids[p]
				if id == "" {
					id = idFor(path)
				}
				path = strings.Replace(path, p, id, 1)
				targetsVictim = true
			}
		}
		if r.Path == "/api/v1/session/org" {
			targetsVictim = true
		}
		if r.Path == "/api/v1/org" && r.Method == http.MethodDelete {
			path += "?confirm=victim-org"
		}
		api := strings.HasPrefix(r.Path, "/api/v1/")
		minRole := ""
		if api {
			op, ok := doc.Paths[pathParam.ReplaceAllString(strings.TrimPrefix(r.Path, "/api/v1"), "{$1}")][strings.ToLower(r.Method)]
			if !ok || op.Role == "" {
				t.Errorf("%s: no x-leakwatch-role in openapi.json", route)
				continue
			}
			minRole = op.Role
		}
		body := bodies[route]
		if body == nil && r.Method != http.MethodGet && r.Method != http.MethodDelete {
			body = map[string]any{}
		}
		for name, c := range actors {
			status, reply := c.do(r.Method, path, body)
			for _, m := range markers {
				if strings.Contains(string(reply), m) {
					t.Errorf("%s as %s (%d): reply reveals %q: %.300s", route, name, status, m, reply)
				}
			}
			if !api {
				continue
			}
			allowed := roleOrder[actorRole[name]] >= roleOrder[minRole]
			if minRole == "user" && strings.HasPrefix(name, "token-") {
				allowed = false
			}
			if roleOrder[minRole] >= roleOrder["viewer"] && name == "no-org" {
				allowed = false
			}
			if !allowed && status != http.StatusUnauthorized && status != http.StatusForbidden {
				t.Errorf("%s as %s below %s: status %d, want 401 or 403: %.200s", route, name, minRole, status, reply)
			}
			if allowed && targetsVictim && status < 300 {
				t.Errorf("%s as %s succeeded (%d) on the victim's object: %.200s", route, name, status, reply)
			}
		}
	}
	if routes < 40 {
		t.Fatalf("walked only %d routes", routes)
	}

	// The victim is unchanged.
	k, err := b.keys.Key(ctx, victim.ID, vKey.ID)
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "victim-key" || k.State != "active" || k.Fingerprint != vKey.Fingerprint || k.Notes != "victim-notes" {
		t.Errorf("victim key changed: %+v", k)
	}
	org, err := b.orgs.ByID(ctx, victim.ID)
	if err != nil || org.Name != "victim-org" || org.DefaultMaxAgeDays != 90 {
		t.Errorf("victim org changed: %+v %v", org, err)
	}
	ms, err := b.auth.Members(ctx, victim.ID)
	if err != nil || len(ms) != 1 || ms[0].Role != auth.RoleOwner {
		t.Errorf("victim members changed: %+v %v", ms, err)
	}
	ts, err := b.auth.Tokens(ctx, victim.ID, auth.Page{})
	if err != nil || len(ts) != 1 || ts[0].RevokedAt != nil {
		t.Errorf("victim tokens changed: %+v %v", ts, err)
	}
	is, err := b.auth.Invitations(ctx, victim.ID, auth.Page{})
	if err != nil || len(is) != 1 || is[0].RevokedAt != nil {
		t.Errorf("victim invitations changed: %+v %v", is, err)
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM keys WHERE org_id = $1`, victim.ID).Scan(&n); err != nil || n != 1 {
		t.Errorf("victim has %d keys", n)
	}
	// The victim's audit log holds only the victim's own actions (and the
	// fixture's, made as "system").
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE org_id = $1 AND actor NOT IN ('victim-owner@victim.example', 'system')`, victim.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d foreign entries in the victim's audit log", n)
	}
}
