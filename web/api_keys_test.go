package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/matcher"
)

// secrets are realistic, high-entropy test secrets (not real credentials).
var secrets = []string{
	"ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3Mf6Jp0Ks2Ea9T",
	"ghp_Q2wE9rT5yU1iO7pA3sD8fG4hJ6kL0zX2cV5b",
	"AKIAZ7QW3ER5TY8UI2OP",
	"xoxb-2948573910-5839201748-Kd8Fj3Lq9Wm2Xz7Vb4Nc1Hy6",
}

func fingerprint(t *testing.T, secret string) string {
	t.Helper()
	fp, err := matcher.Compute([]byte(secret), matcher.ComputeOpts{AllowWeak: true})
	if err != nil {
		t.Fatal(err)
	}
	return fp.String()
}

func TestKeysAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@acme.example", org.ID, "admin")
	c := b.signIn(t, "admin@acme.example")

	// Plaintext is refused, whatever field it comes in.
	status, body := c.do(http.MethodPost, "/api/v1/keys", map[string]any{"name": "deploy", "fingerprint": secrets[0]})
	if status != http.StatusUnprocessableEntity || errorCode(t, body) != "plaintext_secret" || bytes.Contains(body, []byte(secrets[0][4:])) {
		t.Fatalf("plaintext fingerprint = %d %s", status, body)
	}
	status, body = c.do(http.MethodPost, "/api/v1/keys", map[string]any{"name": "deploy", "fingerprint": fingerprint(t, secrets[0]), "secret": secrets[0]})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "unknown field") {
		t.Fatalf("secret field = %d %s", status, body)
	}
	status, body = c.do(http.MethodPost, "/api/v1/keys", map[string]any{"name": "deploy", "fingerprint": fingerprint(t, secrets[0]), "notes": secrets[1]})
	if status != http.StatusUnprocessableEntity || errorCode(t, body) != "plaintext_secret" || bytes.Contains(body, []byte(secrets[1][4:])) {
		t.Fatalf("secret in notes = %d %s", status, body)
	}
	status, body = c.do(http.MethodPost, "/api/v1/keys", map[string]any{"name": "deploy", "fingerprint": "lw1:s:ghp_:40:zz"})
	if status != http.StatusBadRequest || errorCode(t, body) != "invalid" {
		t.Fatalf("malformed fingerprint = %d %s", status, body)
	}

	var k keys.Key
	c.mustJSON(http.MethodPost, "/api/v1/keys", map[string]any{
		"name": "deploy-bot", "fingerprint": fingerprint(t, secrets[0]), "environment": "staging", "owner": "platform team",
		"notes": "repo:read only", "tags": []string{"ci", "github"}, "max_age_days": 30, "revocation_url": "https://hooks.example/revoke",
	}, http.StatusCreated, &k)
	if k.Provider != "github" || k.Environment != "staging" || k.State != "active" || k.Stale || !k.NeverRotated || k.PolicyDays != 30 || len(k.Tags) != 2 {
		t.Fatalf("registered key = %+v", k)
	}
	status, body = c.do(http.MethodPost, "/api/v1/keys", map[string]any{"name": "again", "fingerprint": fingerprint(t, secrets[0])})
	if status != http.StatusConflict || errorCode(t, body) != "duplicate" {
		t.Fatalf("duplicate = %d %s", status, body)
	}
	// A fingerprint without a known prefix takes the chosen provider.
	var other keys.Key
	c.mustJSON(http.MethodPost, "/api/v1/keys", map[string]any{"name": "db", "fingerprint": fingerprint(t, "Zq8Wm3Xr7Tn2Vb5Kc9Hd4Lf"), "provider": "Postgres"}, http.StatusCreated, &other)
	if other.Provider != "postgres" || other.Environment != "production" || other.PolicyDays != 90 {
		t.Fatalf("key without prefix = %+v", other)
	}

	// Rotation replaces the fingerprint and keeps history.
	var rotated keys.Key
	c.mustJSON(http.MethodPost, "/api/v1/keys/"+itoa(k.ID)+"/rotate", map[string]string{"fingerprint": fingerprint(t, secrets[1])}, http.StatusOK, &rotated)
	if rotated.Fingerprint != fingerprint(t, secrets[1]) || rotated.RotatedAt == nil || rotated.NeverRotated {
		t.Fatalf("rotated = %+v", rotated)
	}
	var hist page[keys.Version]
	c.mustJSON(http.MethodGet, "/api/v1/keys/"+itoa(k.ID)+"/history", nil, http.StatusOK, &hist)
	if len(hist.Items) != 2 || hist.Items[0].Fingerprint != fingerprint(t, secrets[0]) || hist.Items[0].ReplacedAt == nil || hist.Items[1].ReplacedAt != nil {
		t.Fatalf("history = %+v", hist.Items)
	}

	// Stale: make the other key older than its policy.
	if _, err := b.pool.Exec(context.Background(), `UPDATE keys SET created_at = now() - interval '100 days' WHERE id = $1`, other.ID); err != nil {
		t.Fatal(err)
	}
	var stale page[keys.Key]
	c.mustJSON(http.MethodGet, "/api/v1/keys?stale=true", nil, http.StatusOK, &stale)
	if len(stale.Items) != 1 || stale.Items[0].ID != other.ID || !stale.Items[0].Stale || stale.Items[0].AgeDays != 100 {
		t.Fatalf("stale keys = %+v", stale.Items)
	}
	var digest keys.Digest
	c.mustJSON(http.MethodGet, "/api/v1/keys/digest", nil, http.StatusOK, &digest)
	if len(digest.Stale) != 1 || len(digest.NeverRotated) != 1 || digest.NeverRotated[0].ID != other.ID {
		t.Fatalf("digest = %+v", digest)
	}

	// Editing and retiring.
	var edited keys.Key
	c.mustJSON(http.MethodPatch, "/api/v1/keys/"+itoa(k.ID), map[string]any{"owner": "sre", "tags": []string{"ci"}}, http.StatusOK, &edited)
	if edited.Owner != "sre" || len(edited.Tags) != 1 || edited.Notes != "repo:read only" {
		t.Fatalf("edited = %+v", edited)
	}
	var retired keys.Key
	c.mustJSON(http.MethodPost, "/api/v1/keys/"+itoa(other.ID)+"/retire", nil, http.StatusOK, &retired)
	if retired.State != "retired" || retired.Stale {
		t.Fatalf("retired = %+v", retired)
	}

	// Pagination walks every key exactly once.
	for i := range 3 {
		c.mustJSON(http.MethodPost, "/api/v1/keys", map[string]any{"name": "extra " + itoa(int64(i)), "fingerprint": fingerprint(t, "ghp_Extra"+itoa(int64(i))+"Zq8Wm3Xr7Tn2Vb5Kc9Hd4Lf0Pq")}, http.StatusCreated, nil)
	}
	seen := map[int64]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		var p page[keys.Key]
		c.mustJSON(http.MethodGet, "/api/v1/keys?limit=2&cursor="+cursor, nil, http.StatusOK, &p)
		for _, k := range p.Items {
			if seen[k.ID] {
				t.Fatalf("key %d on two pages", k.ID)
			}
			seen[k.ID] = true
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %d keys, want 5", len(seen))
	}

	// Every change is audited, and the export is JSON lines.
	var log page[audit.Entry]
	c.mustJSON(http.MethodGet, "/api/v1/audit?limit=1000", nil, http.StatusOK, &log)
	actions := map[string]int{}
	for _, e := range log.Items {
		if e.Actor == audit.System.Name {
			continue // the fixture's organisation and membership
		}
		actions[e.Action]++
		if e.Actor != "admin@acme.example" || e.IP == "" || e.UserAgent == "" || e.OrgID != org.ID {
			t.Errorf("audit entry %+v lacks who/where", e)
		}
	}
	for _, want := range []string{"key.create", "key.rotate", "key.update", "key.retired", "session.create"} {
		if actions[want] == 0 {
			t.Errorf("no %s in audit log %v", want, actions)
		}
	}
	status, export := c.do(http.MethodGet, "/api/v1/audit/export", nil)
	if status != http.StatusOK {
		t.Fatalf("export = %d", status)
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(export))
	for sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		lines++
	}
	if lines != len(log.Items) {
		t.Fatalf("export has %d lines, list %d entries", lines, len(log.Items))
	}
	for _, s := range secrets {
		if bytes.Contains(export, []byte(s[4:])) {
			t.Fatal("audit log holds a secret")
		}
	}
	// The log is append-only.
	if _, err := b.pool.Exec(context.Background(), `UPDATE audit_log SET action = 'x'`); err == nil {
		t.Fatal("audit_log accepted an UPDATE")
	}
	if _, err := b.pool.Exec(context.Background(), `DELETE FROM audit_log`); err == nil {
		t.Fatal("audit_log accepted a DELETE")
	}
}

func itoa(n int64) string { return strings.TrimSpace(json.Number(jsonInt(n)).String()) }

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func mustParse(t *testing.T, s string) matcher.Fingerprint {
	t.Helper()
	fp, err := matcher.ParseFingerprint(s)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}
