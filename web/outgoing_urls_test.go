package web

import (
	"context"
	"net/http"
	"testing"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// TestOutgoingURLsRefusedWhenSet: every route that sets a URL Leakwatch
// will later call answers 422 invalid_url for a URL the deployment's guard
// (no allowlist here) would never reach, and stores nothing.
func TestOutgoingURLsRefusedWhenSet(t *testing.T) {
	t.Parallel()
	f := newIncidentFixture(t)
	guard := webhook.Guard{}
	f.srv.orgs = orgs.NewStore(f.pool).WithGuard(guard)
	f.srv.keys = keys.NewStore(f.pool).WithGuard(guard)
	f.srv.incidents = incidents.NewService(f.pool, nil, f.logger, incidents.Config{Guard: &guard})
	withIntegrations(t, f.testBundle)
	f.srv.eventHooks = eventhooks.NewStore(f.pool, nil).WithGuard(guard)
	owner := f.mustUser(t, "owner@acme.example", f.org.ID, auth.RoleOwner)
	c := f.signIn(t, owner.Email)

	bad := []string{
		"https://127.0.0.1/services/T/B/X", "https://2130706433/x", "https://0177.0.0.1/x", "https://127.1/x",
		"https://0x7f.0.0.1/x", "https://localhost/x", "https://app.localhost/x", "https://0.0.0.0/x",
		"https://[::1]/x", "https://[::ffff:127.0.0.1]/x", "https://10.1.2.3/x", "https://192.168.0.1/x",
		"https://169.254.169.254/latest/meta-data/", "https://[::ffff:169.254.169.254]/x", "https://[fe80::1]/x",
		"https://100.64.0.1/x", "https://user:pw@hooks.slack.example/x", "gopher://hooks.slack.example/x",
	}
	keyPath := "/api/v1/keys/" + itoa(f.key.ID)
	routes := []struct {
		method, path string
		body         func(u string) any
	}{
		{http.MethodPatch, "/api/v1/org", func(u string) any { return map[string]any{"slack_webhook_url": u} }},
		{http.MethodPatch, "/api/v1/org", func(u string) any { return map[string]any{"default_revocation_url": u} }},
		{http.MethodPut, "/api/v1/incident-settings", func(u string) any {
			return map[string]any{"ack_critical_seconds": 900, "ack_high_seconds": 3600, "ack_medium_seconds": 14400,
				"ack_low_seconds": 86400, "phase_limit_seconds": 86400, "escalation_slack_url": u}
		}},
		{http.MethodPut, "/api/v1/revocation-endpoint", func(u string) any { return map[string]any{"url": u} }},
		{http.MethodPost, "/api/v1/integrations/webhooks", func(u string) any { return map[string]any{"url": u} }},
		{http.MethodPatch, keyPath, func(u string) any { return map[string]any{"revocation_url": u} }},
		{http.MethodPost, "/api/v1/keys", func(u string) any {
			return map[string]any{"name": "other", "fingerprint": fingerprint(t, secrets[1]), "revocation_url": u}
		}},
	}
	for _, r := range routes {
		for _, u := range bad {
			st, body := c.do(r.method, r.path, r.body(u))
			if st != http.StatusUnprocessableEntity || errorCode(t, body) != "invalid_url" {
				t.Errorf("%s %s with %s = %d %s, want 422 invalid_url", r.method, r.path, u, st, body)
			}
		}
	}
	var n int
	err := f.pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM orgs WHERE slack_webhook_url <> '' OR default_revocation_url <> '')
			+ (SELECT count(*) FROM incident_settings WHERE escalation_slack_url <> '')
			+ (SELECT count(*) FROM revocation_endpoints) + (SELECT count(*) FROM event_webhooks)
			+ (SELECT count(*) FROM keys WHERE revocation_url <> '')`).Scan(&n)
	if err != nil || n != 0 {
		t.Fatalf("%d refused URLs stored (%v)", n, err)
	}
	// A public URL still passes.
	c.mustJSON(http.MethodPatch, "/api/v1/org", map[string]any{"slack_webhook_url": "https://hooks.slack.com/services/T/B/X"}, http.StatusOK, nil)
}
