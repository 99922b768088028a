package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// testArgon keeps password hashing cheap in tests.
var testArgon = auth.ArgonParams{Memory: 64, Time: 1, Threads: 1}

const testPassword = "correct horse battery staple"

type testBundle struct {
	pool   *pgxpool.Pool
	srv    *Server
	ts     *httptest.Server
	auth   *auth.Store
	orgs   *orgs.Store
	keys   *keys.Store
	audit  *audit.Store
	logger *slog.Logger
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &testBundle{
		pool: pool, auth: auth.NewStore(pool, auth.Config{Argon: testArgon, CheckWait: time.Minute}), orgs: orgs.NewStore(pool),
		keys: keys.NewStore(pool), audit: audit.NewStore(pool), logger: logger,
	}
	srv, err := New(Config{
		Incidents: incidents.NewService(pool, nil, logger, incidents.Config{}), Auth: b.auth, Orgs: b.orgs, Keys: b.keys, Audit: b.audit,
		BaseURL: "http://leakwatch.test", Logger: logger, Gatherer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = srv
	b.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(b.ts.Close)
	return b
}

// mustOrg creates an organisation.
func (b *testBundle) mustOrg(t *testing.T, name string) orgs.Org {
	t.Helper()
	o, _, err := b.orgs.Create(context.Background(), audit.System, name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// mustUser creates a user with testPassword and a role in org.
func (b *testBundle) mustUser(t *testing.T, email string, orgID int64, role auth.Role) auth.User {
	t.Helper()
	ctx := context.Background()
	u, _, err := b.auth.EnsureUser(ctx, audit.System, email)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.auth.SetPassword(ctx, audit.System, u.ID, testPassword); err != nil {
		t.Fatal(err)
	}
	if orgID != 0 {
		if _, _, err := b.auth.AddMember(ctx, audit.System, orgID, u.ID, role); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// client is an HTTP client with a cookie jar and, after signIn, the CSRF
// token; or with a bearer token.
type client struct {
	t      *testing.T
	base   string
	http   *http.Client
	csrf   string
	bearer string
}

func (b *testBundle) client(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: b.ts.URL, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *testBundle) tokenClient(t *testing.T, token string) *client {
	c := b.client(t)
	c.bearer = token
	return c
}

// signIn signs in through the API and keeps the session.
func (b *testBundle) signIn(t *testing.T, email string) *client {
	t.Helper()
	c := b.client(t)
	var me meResponse
	c.mustJSON(http.MethodPost, "/api/v1/session", map[string]string{"email": email, "password": testPassword}, http.StatusOK, &me)
	c.csrf = me.CSRFToken
	return c
}

// do sends a JSON request (body may be nil) and returns status and body.
func (c *client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		bs, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(bs)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, out
}

// mustJSON sends a request, requires the status and decodes the reply into
// out (if not nil).
func (c *client) mustJSON(method, path string, body any, status int, out any) {
	c.t.Helper()
	got, b := c.do(method, path, body)
	if got != status {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, got, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// errorCode returns the code of an error reply.
func errorCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an error object: %s", b)
	}
	return e.Error.Code
}

// form posts a form with the session's CSRF token.
func (c *client) form(path string, values map[string]string) *http.Response {
	c.t.Helper()
	var sb strings.Builder
	first := true
	for k, v := range values {
		if !first {
			sb.WriteByte('&')
		}
		first = false
		sb.WriteString(k + "=" + urlEscape(v))
	}
	if c.csrf != "" && values["csrf_token"] == "" {
		sb.WriteString("&csrf_token=" + urlEscape(c.csrf))
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(sb.String()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
