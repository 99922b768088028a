package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestFreeTextRefusesSecrets: every free-text field of the API (key names,
// tags, owners and notes; incident notes, reasons and reviews;
// organisation and token names) answers 422 plaintext_secret for text
// holding a live secret, and the secret is stored nowhere.
func TestFreeTextRefusesSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIncidentFixture(t)
	if err := f.svc.Record(ctx, []crawler.Finding{{KeyID: f.key.ID, OrgID: f.org.ID, Fingerprint: f.key.Fingerprint, Source: "github",
		URL: "https://github.com/o/r/blob/x/a#L1", Preview: "TOKEN=ghp_****", EventAt: time.Now().Add(-time.Minute), DetectedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	var incidentID int64
	if err := f.pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&incidentID); err != nil {
		t.Fatal(err)
	}
	owner := f.mustUser(t, "owner@acme.example", f.org.ID, auth.RoleOwner)
	c := f.signIn(t, owner.Email)
	base := "/api/v1/incidents/" + itoa(incidentID)
	keyPath := "/api/v1/keys/" + itoa(f.key.ID)

	planted := []string{
		"sk_live_51HqLyjWDarjtT1zdp7dcXq9Zx",                            // Stripe
		"ghp_R4nd0mT0k3nV4lu3F0rT35t1ngAbCdEf01",                        // GitHub
		"AKIAIOSFODNN7EXAMPLF",                                          // AWS key ID
		"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",                      // AWS secret key
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX2J5dGVz", // JWT
		"https://deploy:Sup3rS3cretPw@git.acme.example/repo",            // password in a URL
	}
	fields := []struct {
		method, path string
		body         func(secret string) any
	}{
		{http.MethodPost, "/api/v1/keys", func(s string) any {
			return map[string]any{"name": "ci", "fingerprint": fingerprint(t, secrets[1]), "tags": []string{"prod", s}}
		}},
		{http.MethodPost, "/api/v1/keys", func(s string) any {
			return map[string]any{"name": "ci " + s, "fingerprint": fingerprint(t, secrets[1])}
		}},
		{http.MethodPatch, keyPath, func(s string) any { return map[string]any{"tags": []string{s}} }},
		{http.MethodPatch, keyPath, func(s string) any { return map[string]any{"notes": "rotated; new value " + s} }},
		{http.MethodPatch, keyPath, func(s string) any { return map[string]any{"owner": s} }},
		{http.MethodPost, base + "/notes", func(s string) any { return map[string]any{"note": "the key was " + s} }},
		{http.MethodPost, base + "/contain", func(s string) any { return map[string]any{"note": s} }},
		{http.MethodPost, base + "/recover", func(s string) any { return map[string]any{"note": s} }},
		{http.MethodPost, base + "/false-positive", func(s string) any { return map[string]any{"reason": "test value " + s} }},
		{http.MethodPost, base + "/accept-risk", func(s string) any { return map[string]any{"reason": s} }},
		{http.MethodPost, base + "/reopen", func(s string) any { return map[string]any{"reason": s} }},
		{http.MethodPost, base + "/close", func(s string) any {
			return map[string]any{"root_cause": "committed " + s, "leak_vector": "push", "follow_ups": "hook"}
		}},
		{http.MethodPost, base + "/close", func(s string) any {
			return map[string]any{"root_cause": "env file", "leak_vector": "push", "follow_ups": "rotate " + s}
		}},
		{http.MethodPatch, "/api/v1/org", func(s string) any { return map[string]any{"name": "acme " + s} }},
		{http.MethodPost, "/api/v1/orgs", func(s string) any { return map[string]any{"name": s} }},
		{http.MethodPost, "/api/v1/tokens", func(s string) any { return map[string]any{"name": "ci " + s, "scope": "read"} }},
	}
	for _, fl := range fields {
		for _, s := range planted {
			st, body := c.do(fl.method, fl.path, fl.body(s))
			if st != http.StatusUnprocessableEntity || errorCode(t, body) != "plaintext_secret" {
				t.Errorf("%s %s with %.12s… = %d %s, want 422 plaintext_secret", fl.method, fl.path, s, st, body)
			}
			if strings.Contains(string(body), s) {
				t.Errorf("%s %s echoes the secret", fl.method, fl.path)
			}
		}
	}
	dump := dumpAll(t, f)
	for _, s := range planted {
		if strings.Contains(dump, s) {
			t.Errorf("%.12s… stored", s)
		}
	}
	// Ordinary text still passes.
	c.mustJSON(http.MethodPost, base+"/notes", map[string]any{"note": "rotated in the AWS console; see https://wiki.acme.example/runbooks/aws-keys"}, http.StatusOK, nil)
	c.mustJSON(http.MethodPatch, keyPath, map[string]any{"tags": []string{"prod", "payments-team", "eu-west-1"}, "owner": "platform-team"}, http.StatusOK, nil)
}

// dumpAll returns every text and JSON value of the tables free text can
// reach.
func dumpAll(t *testing.T, f incidentFixture) string {
	t.Helper()
	var s string
	err := f.pool.QueryRow(context.Background(), `
		SELECT concat_ws(E'\n',
			(SELECT string_agg(to_jsonb(k)::text, E'\n') FROM keys k),
			(SELECT string_agg(to_jsonb(o)::text, E'\n') FROM orgs o),
			(SELECT string_agg(to_jsonb(i)::text, E'\n') FROM incidents i),
			(SELECT string_agg(to_jsonb(e)::text, E'\n') FROM incident_events e),
			(SELECT string_agg(to_jsonb(a)::text, E'\n') FROM audit_log a),
			(SELECT string_agg(to_jsonb(tk)::text, E'\n') FROM api_tokens tk))`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
