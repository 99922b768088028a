package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
)

var pathParamOpenAPI = regexp.MustCompile(`\{([a-z_]+)\}`)

// apiOperation is one operation of the served OpenAPI document.
type apiOperation struct {
	Method, Path string // Path in echo form: /api/v1/keys/:id
	Role         string // x-leakwatch-role
	HasBody      bool
	HasLimit     bool
}

func apiOperations(t *testing.T, b *testBundle) []apiOperation {
	t.Helper()
	status, body := b.client(t).do(http.MethodGet, "/api/v1/openapi.json", nil)
	if status != http.StatusOK {
		t.Fatalf("openapi.json = %d", status)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	var ops []apiOperation
	for p, methods := range doc.Paths {
		for m, raw := range methods {
			if m == "parameters" {
				continue
			}
			var op struct {
				Role        string          `json:"x-leakwatch-role"`
				RequestBody json.RawMessage `json:"requestBody"`
				Parameters  json.RawMessage `json:"parameters"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			ops = append(ops, apiOperation{
				Method: strings.ToUpper(m), Path: "/api/v1" + pathParamOpenAPI.ReplaceAllString(p, ":$1"), Role: op.Role,
				HasBody: len(op.RequestBody) > 0, HasLimit: bytes.Contains(bytes.ToLower(op.Parameters), []byte("limit")),
			})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Path+ops[i].Method < ops[j].Path+ops[j].Method })
	if len(ops) < 50 {
		t.Fatalf("only %d operations in openapi.json", len(ops))
	}
	return ops
}

// formRoutes are the dashboard's form posts with the least role each
// needs ("user": any signed-in user; "public": anyone).
var formRoutes = map[string]string{
	"/signin": "public", "/signin/link": "public", "/invite": "public", "/signout": "user", "/orgs/switch": "user",
	"/incidents/:id/act": "responder", "/keys": "admin", "/keys/:id/rotate": "admin", "/keys/:id/retire": "admin",
	"/members/invite": "admin", "/members/:user_id/role": "admin", "/members/:user_id/remove": "admin",
	"/tokens": "admin", "/tokens/:id/revoke": "admin", "/slack/interactions/:org_id": "public",
	"/incidents/bulk": "responder", "/keys/:id/reactivate": "admin", "/keys/:id/edit": "admin", "/keys/:id/state": "admin",
	"/integrations/slack/test": "admin", "/sources/watches": "admin", "/sources/watches/:id/remove": "admin",
	"/settings": "admin", "/account/password": "user", "/account/signout-all": "user",
	"/integrations/slack/webhook": "admin", "/integrations/slack/webhook/remove": "admin", "/integrations/slack/bot": "admin",
	"/integrations/slack/disconnect": "admin", "/integrations/webhooks": "admin", "/integrations/webhooks/:id/delete": "admin",
	"/integrations/revocation": "admin", "/integrations/revocation/remove": "admin", "/settings/org": "admin",
	"/integrations/revocation/test": "admin",
}

// TestFormRoutesListed keeps formRoutes complete: a new form post must be
// walked too.
func TestFormRoutesListed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, r := range b.srv.echo.Routes() {
		if r.Method == http.MethodPost && !strings.HasPrefix(r.Path, "/api/") {
			if _, ok := formRoutes[r.Path]; !ok {
				t.Errorf("form route POST %s is not in formRoutes", r.Path)
			}
		}
	}
}

// dbChecksum digests every application table, leaving out the columns
// that merely record that a session or token was used.
func dbChecksum(t *testing.T, b *testBundle) string {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `
		SELECT table_name, string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
		FROM information_schema.columns
		WHERE table_schema = 'public' AND column_name NOT IN ('last_seen_at', 'last_used_at')
			-- A statement trigger bumps it even for an UPDATE of no key (a
			-- refused foreign id); it only invalidates the scan cache.
			AND table_name <> 'keyset_version'
			-- Refused password checks (sign-in, the account page's current
			-- password) are recorded for the throttle by design.
			AND table_name <> 'login_attempts'
		GROUP BY table_name ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	type tbl struct{ name, cols string }
	var tbls []tbl
	for rows.Next() {
		var x tbl
		if err := rows.Scan(&x.name, &x.cols); err != nil {
			t.Fatal(err)
		}
		tbls = append(tbls, x)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	var sb strings.Builder
	for _, x := range tbls {
		var sum string
		q := fmt.Sprintf(`SELECT %s || ':' || count(*) || ':' || coalesce(md5(string_agg(r, '|' ORDER BY r)), '') FROM (SELECT ROW(%s)::text AS r FROM %s) s`,
			"'"+x.name+"'", x.cols, `"`+x.name+`"`)
		if err := b.pool.QueryRow(ctx, q).Scan(&sum); err != nil {
			t.Fatalf("checksum %s: %v", x.name, err)
		}
		sb.WriteString(sum + "\n")
	}
	return sb.String()
}

// walker sends requests as one identity.
type walker struct {
	name   string
	c      *client
	cookie bool
}

// send sends a raw request and returns status, Location and body.
func (w walker) send(t *testing.T, method, path, ctype string, body []byte) (int, string, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, w.c.base+path, r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if w.c.csrf != "" {
		req.Header.Set("X-CSRF-Token", w.c.csrf)
	}
	if w.c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+w.c.bearer)
	}
	resp, err := w.c.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), out
}

func multipartBody(t *testing.T, field, value string) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField(field, value); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// hostileCase is one kind of bad request. middleware cases are refused
// before any handler runs; others are refused by the handler where the
// route reads that input.
type hostileCase struct {
	name       string
	query      string
	ctype      string
	body       []byte
	middleware bool
}

func hostileCases(t *testing.T) []hostileCase {
	mpNUL, mpType := multipartBody(t, "name", "a\x00b")
	mpUTF8, _ := multipartBody(t, "name", "a\xffb")
	big := []byte(`{"name":"` + strings.Repeat("x", 2<<20) + `"}`)
	return []hostileCase{
		{name: "NUL in query", query: "?limit=%00&q=a%00b&state=%00", middleware: true},
		{name: "invalid UTF-8 in query", query: "?q=%ff%fe&state=%c3%28", middleware: true},
		{name: "NUL in JSON", ctype: "application/json", body: []byte(`{"name":"a\u0000b","notes":"\u0000","email":"x\u0000@example.com"}`), middleware: true},
		{name: "invalid UTF-8 in JSON", ctype: "application/json", body: []byte("{\"name\":\"a\xffb\",\"notes\":\"\xc3\x28\"}"), middleware: true},
		{name: "oversized JSON", ctype: "application/json", body: big, middleware: true},
		{name: "oversized form", ctype: "application/x-www-form-urlencoded", body: []byte("name=" + strings.Repeat("x", 2<<20)), middleware: true},
		{name: "NUL in form", ctype: "application/x-www-form-urlencoded", body: []byte("name=a%00b&email=%00&fingerprint=%00"), middleware: true},
		{name: "invalid UTF-8 in form", ctype: "application/x-www-form-urlencoded", body: []byte("name=a%ffb&notes=%c3%28"), middleware: true},
		{name: "NUL in multipart", ctype: mpType, body: mpNUL, middleware: true},
		{name: "invalid UTF-8 in multipart", ctype: mpType, body: mpUTF8, middleware: true},
		{name: "negative limit", query: "?limit=-1&cursor=-5"},
		{name: "wrong content type", ctype: "text/plain", body: []byte("name=x")},
		{name: "malformed JSON", ctype: "application/json", body: []byte(`{"name":`)},
		{name: "no body", ctype: "application/json"},
	}
}

// TestHostileInputWalk calls every route of the OpenAPI document and every
// form route with hostile input, as an owner's session, an admin's write
// token and nobody, with the ids of another organisation's objects. No
// answer may be a 5xx; hostile input is refused with 4xx and the error
// shape; and nothing in the database changes.
func TestHostileInputWalk(t *testing.T) {
	t.Parallel()
	b := setup(t)
	withIntegrations(t, b)
	b.srv.github = ghcrawler.NewFeeds(b.pool)
	ctx := context.Background()

	foreign := b.mustOrg(t, "foreign")
	fOwner := b.mustUser(t, "owner@foreign.example", foreign.ID, auth.RoleOwner)
	fKey, err := b.keys.Register(ctx, foreign.ID, keys.Params{Name: "foreign-key", Fingerprint: mustParse(t, fingerprint(t, secrets[0]))})
	if err != nil {
		t.Fatal(err)
	}
	_, fToken, err := b.auth.CreateToken(ctx, foreign.ID, fOwner.ID, "foreign-token", auth.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	_, fInv, err := b.auth.Invite(ctx, foreign.ID, fOwner.ID, "invitee@foreign.example", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	// Path parameters always name another organisation's objects.
	foreignID := func(path, param string) string {
		switch {
		case param == "user_id":
			return itoa(fOwner.ID)
		case param == "org_id":
			return itoa(foreign.ID)
		case strings.Contains(path, "/tokens/"):
			return itoa(fToken.ID)
		case strings.Contains(path, "/invitations/"):
			return itoa(fInv.ID)
		}
		return itoa(fKey.ID)
	}
	fill := func(path string) string {
		parts := strings.Split(path, "/")
		for i, p := range parts {
			if name, ok := strings.CutPrefix(p, ":"); ok {
				parts[i] = foreignID(path, name)
			}
		}
		return strings.Join(parts, "/")
	}

	home := b.mustOrg(t, "home")
	b.mustUser(t, "owner@home.example", home.ID, auth.RoleOwner)
	admin := b.mustUser(t, "admin@home.example", home.ID, auth.RoleAdmin)
	token, _, err := b.auth.CreateToken(ctx, home.ID, admin.ID, "walker", auth.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	walkers := []walker{
		{name: "owner session", c: b.signIn(t, "owner@home.example"), cookie: true},
		{name: "write token", c: b.tokenClient(t, token)},
		{name: "nobody", c: b.client(t)},
	}
	// Routes that take no input at all (signing out, disconnecting
	// Slack) get only the cases refused before any handler runs: any other
	// request to them is a legitimate one, and would end the walk's own
	// session or audit a disconnection.
	noInput := map[string]bool{"DELETE /api/v1/session": true, "DELETE /api/v1/sessions": true, "POST /signout": true,
		"DELETE /api/v1/integrations/slack": true, "POST /account/signout-all": true,
		"POST /integrations/slack/webhook/remove": true, "POST /integrations/slack/disconnect": true}

	before := dbChecksum(t, b)
	requests := 0
	check := func(w walker, method, route, path string, hc hostileCase, mustRefuse bool, form bool) {
		status, loc, out := w.send(t, method, path+hc.query, hc.ctype, hc.body)
		requests++
		where := fmt.Sprintf("%s: %s %s (%s)", w.name, method, path, hc.name)
		if status >= 500 {
			t.Errorf("%s = %d %.200s", where, status, out)
			return
		}
		refused := status >= 400 && status < 500
		if form && status == http.StatusSeeOther && (strings.Contains(loc, "error=") || strings.HasPrefix(loc, "/signin") || strings.HasPrefix(loc, "/orgs")) {
			refused = true // the dashboard's way of refusing: back with a message
		}
		if mustRefuse && !refused {
			t.Errorf("%s = %d %q, want a 4xx", where, status, loc)
			return
		}
		if status >= 400 && !form {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(out, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Errorf("%s = %d without the error shape: %.200s", where, status, out)
			}
		}
	}
	cases := hostileCases(t)
	for _, op := range apiOperations(t, b) {
		path := fill(op.Path)
		hasParam := path != op.Path
		for _, hc := range cases {
			if noInput[op.Method+" "+op.Path] && !hc.middleware {
				continue
			}
			if op.Method == http.MethodGet && hc.body != nil {
				continue
			}
			must := hc.middleware || hasParam ||
				(hc.name == "negative limit" && op.HasLimit) ||
				(hc.body != nil || hc.name == "no body") && op.HasBody && op.Method != http.MethodGet
			for _, w := range walkers {
				check(w, op.Method, op.Path, path, hc, must, false)
			}
		}
	}
	formCases := append(cases, hostileCase{name: "JSON to a form", ctype: "application/json", body: []byte(`{"name":"x"}`)})
	for route := range formRoutes {
		path := fill(route)
		for _, hc := range formCases {
			if noInput["POST "+route] && !hc.middleware {
				continue
			}
			must := hc.middleware || path != route
			if route == "/signin" || route == "/signin/link" || route == "/invite" || route == "/orgs/switch" || route == "/tokens" || route == "/slack/interactions/:org_id" {
				must = true // each needs fields none of these cases carries
			}
			for _, w := range walkers {
				check(w, http.MethodPost, route, path, hc, must, true)
			}
		}
	}
	if after := dbChecksum(t, b); after != before {
		var actions []string
		rows, _ := b.pool.Query(ctx, `SELECT action || ' ' || actor || ' ' || object_id FROM audit_log ORDER BY id`)
		for rows.Next() {
			var a string
			_ = rows.Scan(&a)
			actions = append(actions, a)
		}
		rows.Close()
		t.Fatalf("the database changed during the walk of %d requests:\n%s\naudit log: %v", requests, checksumDiff(before, after), actions)
	}
	t.Logf("%d hostile requests, database unchanged", requests)
}

// checksumDiff names the tables whose checksums differ.
func checksumDiff(before, after string) string {
	was := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		was[l] = true
	}
	var out []string
	for _, l := range strings.Split(after, "\n") {
		if !was[l] {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
