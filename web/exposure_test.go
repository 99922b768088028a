package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestOperatorDetail: probe errors (which name the database's user, name
// and address) and the all-tenant metrics are for this host only; the
// public sees only whether the service is ready.
func TestOperatorDetail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "leakwatch_incidents_open", Help: "all tenants"}))
	dbErr := errors.New("failed to connect to `user=leakwatch database=leakwatch_prod`: 10.0.3.7:5432")
	srv, err := New(Config{Auth: b.auth, Orgs: b.orgs, Keys: b.keys, Audit: b.audit, Logger: b.logger, Gatherer: reg,
		Checks: []Check{{Name: "database", Func: func(context.Context) error { return dbErr }}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	get := func(path string, public bool) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if public {
			// What a reverse proxy on this host passes on from the internet.
			req.Header.Set("X-Forwarded-For", "198.51.100.9")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	status, body := get("/readyz", true)
	if status != http.StatusServiceUnavailable || strings.Contains(body, "leakwatch_prod") || strings.Contains(body, "10.0.3.7") || !strings.Contains(body, "failing") {
		t.Fatalf("public /readyz = %d %s", status, body)
	}
	if status, body := get("/readyz", false); status != http.StatusServiceUnavailable || !strings.Contains(body, "leakwatch_prod") {
		t.Fatalf("operator /readyz = %d %s", status, body)
	}
	if status, body := get("/metrics", true); status != http.StatusNotFound || strings.Contains(body, "incidents_open") {
		t.Fatalf("public /metrics = %d %s", status, body)
	}
	if status, body := get("/metrics", false); status != http.StatusOK || !strings.Contains(body, "leakwatch_incidents_open") {
		t.Fatalf("operator /metrics = %d %.200s", status, body)
	}

}

// TestSecureCookieAndHSTS: with an https base URL the session cookie is a
// __Host- cookie and every answer carries HSTS; over plain http neither.
func TestSecureCookieAndHSTS(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "alice@example.com", org.ID, auth.RoleAdmin)
	srv, err := New(Config{Auth: b.auth, Orgs: b.orgs, Keys: b.keys, Audit: b.audit, Logger: b.logger,
		BaseURL: "https://leakwatch.example", Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	body, _ := json.Marshal(map[string]string{"email": "alice@example.com", "password": testPassword})
	resp, err := http.Post(ts.URL+"/api/v1/session", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("sign-in = %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	cks := resp.Cookies()
	if len(cks) != 1 || cks[0].Name != "__Host-lw_session" || !cks[0].Secure || cks[0].Path != "/" || cks[0].Domain != "" || !cks[0].HttpOnly {
		t.Fatalf("cookies %+v", cks)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v1/me", nil)
	req.AddCookie(cks[0])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), "alice@example.com") {
		t.Fatalf("me with the __Host- cookie = %d %s", resp.StatusCode, out)
	}
	// Plain http (development): no HSTS, no __Host- prefix.
	if status, _ := b.client(t).do(http.MethodGet, "/healthz", nil); status != http.StatusOK {
		t.Fatal(status)
	}
	resp, err = http.Get(b.ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Fatal("HSTS over an http base URL")
	}
}
