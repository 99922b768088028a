package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/revoketest"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
	"github.com/leakwatch/leakwatch/matcher"
)

// TestEndToEndContainment runs containment through the real wiring: a leaked
// Stripe key is contained by a signed revocation request to the org's
// endpoint (a reference receiver trusting only the public key published at
// /.well-known/leakwatch/webhook-keys), and a leaked GitHub token is revoked
// at match time through GitHub's credential revocation API (the fake).
func TestEndToEndContainment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	stripeSecret := randomToken(t, "sk_live_", 32)
	ghSecret := randomToken(t, "ghp_", 36)
	for name, s := range map[string]string{"billing": stripeSecret, "deploy-bot": ghSecret} {
		fp, err := matcher.Compute([]byte(s), matcher.ComputeOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.NewStore(pool).Add(ctx, audit.System, org.ID, name, fp); err != nil {
			t.Fatal(err)
		}
	}
	signing, err := webhook.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	// The receiver trusts only Leakwatch's public key (checked against the
	// published one below); no shared secret.
	receiver := revoketest.NewServer(nil, []ed25519.PublicKey{signing.Public()}, nil)
	defer receiver.Close()
	if _, err := incidents.NewService(pool, nil, logger, incidents.Config{}).SetRevocationEndpoint(ctx, audit.System, org.ID, 0, receiver.URL+"/revoke", false); err != nil {
		t.Fatal(err)
	}

	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPollInterval(1)
	at := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	gh.Publish(githubtest.CommentEvent(27244207500, "octo-org/billing", "mallory", "STRIPE_KEY="+stripeSecret+"\n", at))
	gh.Publish(githubtest.CommentEvent(27244207501, "octo-org/deploy", "mallory", "token: "+ghSecret+"\n", at))

	env := map[string]string{
		"DATABASE_URL":                       dbURL,
		"LEAKWATCH_GITHUB_API_URL":           gh.APIURL(),
		"LEAKWATCH_GITHUB_TOKENS":            "test-token-1",
		"LEAKWATCH_GITHUB_MIN_POLL_INTERVAL": "100ms",
		"LEAKWATCH_KEY_RELOAD_INTERVAL":      "1s",
		"LEAKWATCH_WEBHOOK_ALLOW_NETS":       "127.0.0.0/8",
		"LEAKWATCH_WEBHOOK_SIGNING_KEY":      signing.String(),
	}
	svc := startService(t, env)
	base, logs := svc.Base, svc.Logs

	var published struct{ Keys []webhook.PublicKey }
	if err := json.Unmarshal([]byte(get(t, base+"/.well-known/leakwatch/webhook-keys")), &published); err != nil {
		t.Fatal(err)
	}
	if len(published.Keys) != 1 || published.Keys[0].Key != signing.PublicString() || published.Keys[0].ID != signing.ID() {
		t.Fatalf("published keys %+v", published.Keys)
	}

	phaseOf := func(key string) (phase, actor string) {
		_ = pool.QueryRow(ctx, `
			SELECT i.phase, coalesce((SELECT actor FROM incident_events e WHERE e.incident_id = i.id AND e.to_phase = 'contained' LIMIT 1), '')
			FROM incidents i JOIN keys k ON k.id = i.key_id WHERE k.name = $1`, key).Scan(&phase, &actor)
		return phase, actor
	}
	eventually(t, "both incidents contained", 60*time.Second, func() bool {
		p1, _ := phaseOf("billing")
		p2, _ := phaseOf("deploy-bot")
		return p1 == "contained" && p2 == "contained"
	})
	if _, actor := phaseOf("billing"); actor != "revocation-webhook" {
		t.Errorf("billing contained by %q", actor)
	}
	if _, actor := phaseOf("deploy-bot"); actor != "github-credentials-api" {
		t.Errorf("deploy-bot contained by %q", actor)
	}
	if got := gh.Revoked(); len(got) != 1 || got[0] != ghSecret {
		t.Errorf("GitHub revoked %d credentials", len(got))
	}
	var verified int
	for _, r := range receiver.Requests() {
		if !r.Verified {
			t.Errorf("receiver rejected a request: %s", r.Error)
			continue
		}
		verified++
		if strings.Contains(string(r.Body), stripeSecret) {
			t.Fatal("revocation request carries the secret")
		}
	}
	if verified != 1 {
		t.Errorf("verified revocation requests = %d, want 1 (the GitHub token needs none)", verified)
	}
	metrics := get(t, base+"/metrics")
	for _, want := range []string{"leakwatch_incidents_open{phase=\"contained\"", "leakwatch_incidents_time_to_contain_seconds_count"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	svc.Stop(t)
	for _, s := range []string{stripeSecret, ghSecret, signing.String()} {
		if strings.Contains(logs.String(), s) {
			t.Fatal("logs contain a secret")
		}
	}
	var stored int
	if err := pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM occurrences WHERE preview LIKE '%' || $1 || '%' OR preview LIKE '%' || $2 || '%')
		     + (SELECT count(*) FROM webhook_deliveries WHERE payload::text LIKE '%' || $1 || '%')
		     + (SELECT count(*) FROM incident_events WHERE details::text LIKE '%' || $1 || '%' OR details::text LIKE '%' || $2 || '%')
		     + (SELECT count(*) FROM river_job WHERE kind LIKE 'incident%' AND (args::text LIKE '%' || $2 || '%' OR args::text LIKE '%' || $1 || '%'))`,
		stripeSecret, ghSecret).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Fatal("a secret was stored")
	}
}
