package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// BenchmarkDashboard measures the server time of the overview and the
// queue (first page, a deep page, filtered, searched, sorted) with 10,000
// incidents in the organisation, through the whole handler stack (session,
// membership, query, render). The target is under 50 ms per request:
//
//	go test ./web/ -run '^$' -bench Dashboard -benchtime 20x
func BenchmarkDashboard(b *testing.B) {
	ctx := context.Background()
	tb := setup(b)
	org, _, err := tb.orgs.Create(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	u, _, err := tb.auth.EnsureUser(ctx, "lead@acme.example")
	if err != nil {
		b.Fatal(err)
	}
	if err := tb.auth.SetPassword(ctx, u.ID, testPassword); err != nil {
		b.Fatal(err)
	}
	if _, _, err := tb.auth.AddMember(ctx, org.ID, u.ID, auth.RoleAdmin); err != nil {
		b.Fatal(err)
	}
	seedIncidents(b, tb.pool, org.ID, 10000, "svc-")
	if _, err := tb.pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	resp, err := http.Post(tb.ts.URL+"/api/v1/session", "application/json",
		strings.NewReader(`{"email":"lead@acme.example","password":"`+testPassword+`"}`))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			cookie = c
		}
	}
	if cookie == nil {
		b.Fatalf("sign-in = %d, no session cookie", resp.StatusCode)
	}
	// A deep page: the cursor of the 9,000th newest incident.
	var deep int64
	if err := tb.pool.QueryRow(ctx, `SELECT id FROM incidents WHERE org_id = $1 ORDER BY id DESC OFFSET 9000 LIMIT 1`, org.ID).Scan(&deep); err != nil {
		b.Fatal(err)
	}
	h := tb.srv.Handler()
	for _, bc := range []struct{ name, path string }{
		{"overview", "/"},
		{"queue", "/incidents"},
		{"queue_deep_page", "/incidents?cursor=" + itoa(deep)},
		{"queue_critical_open", "/incidents?severity=critical&phase=open"},
		{"queue_source_gist", "/incidents?source=gist"},
		{"queue_search", "/incidents?q=repo-99"},
		{"queue_sort_severity", "/incidents?sort=severity"},
		{"queue_limit_500", "/incidents?limit=500"},
		{"keys_filtered", "/keys?provider=aws&environment=production"},
		{"integrations", "/integrations"},
		{"settings", "/settings"},
		{"account", "/account"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, bc.path, nil)
				req.Header.Set("Accept", "text/html")
				req.AddCookie(cookie)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s = %d: %.300s", bc.path, rec.Code, rec.Body.String())
				}
			}
		})
	}
}
