package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
	"github.com/leakwatch/leakwatch/matcher"
)

// TestSecretsReseal rotates the encryption key: secrets sealed under the
// old key are re-sealed under the new one and still open once the old key
// is dropped, and a Slack webhook URL stored in plaintext gets sealed. (No t.Parallel: the command reads its configuration from the
// environment.)
func TestSecretsReseal(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const (
		oldKey = "old:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		newKey = "new:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
		token  = "xoxb-rotate-1234-abcdefghijkl"
	)
	oldBox, _ := secretbox.Parse(oldKey)
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := slack.NewStore(pool, oldBox).Connect(ctx, audit.CLI, org.ID, slack.ConnectParams{BotToken: token, SigningSecret: "signing-secret-0123456789", DefaultChannel: "C0ALERTS"}); err != nil {
		t.Fatal(err)
	}
	_, hookSecret, err := eventhooks.NewStore(pool, oldBox).Create(ctx, audit.System, org.ID, "https://siem.example/hook", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A second organisation uses Slack incoming webhooks: its URL was set
	// before encryption (plaintext), its escalation URL under the old key.
	const (
		hookURL       = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnopqrstuvwx"
		escalationURL = "https://hooks.slack.com/services/T0001/B0002/zyxwvutsrqponmlkjihgfedc"
	)
	beta, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "beta")
	if err != nil {
		t.Fatal(err)
	}
	if err := orgs.NewStore(pool).SetSlackWebhook(ctx, audit.System, beta.ID, hookURL); err != nil {
		t.Fatal(err)
	}
	st := incidents.DefaultSettings()
	st.EscalationSlackURL = escalationURL
	if _, err := incidents.NewService(pool, nil, slog.New(slog.DiscardHandler), incidents.Config{Box: oldBox}).SetSettings(ctx, audit.System, beta.ID, st, false); err != nil {
		t.Fatal(err)
	}
	var storedHook, storedEsc string
	if err := pool.QueryRow(ctx, `SELECT o.slack_webhook_url, s.escalation_slack_url FROM orgs o JOIN incident_settings s ON s.org_id = o.id WHERE o.id = $1`, beta.ID).Scan(&storedHook, &storedEsc); err != nil {
		t.Fatal(err)
	}
	if storedHook != hookURL || secretbox.KeyID(storedEsc) != "old" || strings.Contains(storedEsc, "hooks.slack.com") {
		t.Fatalf("before: webhook %q, escalation %q", storedHook, storedEsc)
	}

	// A revocation endpoint with an HMAC secret and the generated Ed25519
	// signing key, both stored before any encryption key was configured.
	fp, err := matcher.Compute([]byte("AKIAIOSFODNN7EXAMPLE"), matcher.ComputeOpts{AllowWeak: true})
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.NewStore(pool).Add(ctx, audit.System, org.ID, "deploy", fp)
	if err != nil {
		t.Fatal(err)
	}
	revSecret, err := incidents.NewService(pool, nil, slog.New(slog.DiscardHandler), incidents.Config{}).SetRevocationEndpoint(ctx, audit.System, org.ID, k.ID, "https://revoke.acme.example/hook", true)
	if err != nil {
		t.Fatal(err)
	}
	signing, err := webhook.LoadOrCreateKeys(ctx, pool, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := dumpDatabase(t, pool); !strings.Contains(d, revSecret) || !strings.Contains(d, signing[0].String()) {
		t.Fatal("the dump does not see the plaintext secrets planted before encryption: it would prove nothing")
	}

	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LEAKWATCH_LOG_LEVEL", "error")
	t.Setenv("LEAKWATCH_ENCRYPTION_KEY", newKey+","+oldKey)
	var out, errOut strings.Builder
	if code := run(ctx, []string{"secrets", "reseal"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("secrets reseal = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `key "new": Slack secrets of 2 organisation(s), 1 webhook subscription(s), 1 revocation endpoint secret(s), 1 signing key(s)`) {
		t.Fatalf("output %q", out.String())
	}
	newBox, _ := secretbox.Parse(newKey)
	conn, err := slack.NewStore(pool, newBox).Connection(ctx, org.ID)
	if err != nil || conn.BotToken != token {
		t.Fatalf("after rotation: token %q, %v", conn.BotToken, err)
	}
	if err := pool.QueryRow(ctx, `SELECT o.slack_webhook_url, s.escalation_slack_url FROM orgs o JOIN incident_settings s ON s.org_id = o.id WHERE o.id = $1`, beta.ID).Scan(&storedHook, &storedEsc); err != nil {
		t.Fatal(err)
	}
	if secretbox.KeyID(storedHook) != "new" || secretbox.KeyID(storedEsc) != "new" {
		t.Fatalf("after: webhook %.20q, escalation %.20q, want both sealed under new", storedHook, storedEsc)
	}
	bconn, err := slack.NewStore(pool, newBox).Connection(ctx, beta.ID)
	if err != nil || bconn.WebhookURL != hookURL || bconn.EscalationWebhookURL != escalationURL || bconn.Mode != slack.ModeWebhook {
		t.Fatalf("beta after rotation: %v (mode %v)", err, bconn.Mode)
	}
	var stored string
	if err := pool.QueryRow(ctx, `SELECT hmac_secret FROM event_webhooks`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if got, err := newBox.Open(stored); err != nil || got != hookSecret {
		t.Fatalf("webhook secret after rotation: %v", err)
	}
	// Privacy scan: no table holds a signing secret, Slack credential or
	// webhook URL in the clear, and all of them still work.
	dump := dumpDatabase(t, pool)
	for _, planted := range []string{"whsec_", "whsk_", "hooks.slack.com", "xoxb-", "signing-secret-0123456789"} {
		if strings.Contains(dump, planted) {
			t.Errorf("a table holds %q in the clear after reseal", planted)
		}
	}
	reloaded, err := webhook.LoadOrCreateKeys(ctx, pool, newBox, nil)
	if err != nil || len(reloaded) != 1 || reloaded[0].String() != signing[0].String() {
		t.Fatalf("signing key after reseal: %v", err)
	}
	var storedRev string
	if err := pool.QueryRow(ctx, `SELECT hmac_secret FROM revocation_endpoints`).Scan(&storedRev); err != nil {
		t.Fatal(err)
	}
	if got, err := newBox.Open(storedRev); err != nil || got != revSecret {
		t.Fatalf("revocation secret after reseal: %v", err)
	}
	// Running it again changes nothing.
	out.Reset()
	if code := run(ctx, []string{"secrets", "reseal"}, strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), "Slack secrets of 0 organisation(s), 0 webhook subscription(s), 0 revocation endpoint secret(s), 0 signing key(s)") {
		t.Fatalf("second run = %d %q", code, out.String())
	}
}

// dumpDatabase returns every text, JSON and bytea value of every table
// outside the system schemas but the skipped ones, as a pg_dump would show
// them.
func dumpDatabase(t *testing.T, pool *pgxpool.Pool, skip ...string) string {
	t.Helper()
	ctx := context.Background()
	skip = append([]string{}, skip...) // an empty array, not NULL
	rows, err := pool.Query(ctx, `
		SELECT format('SELECT %I::text FROM %I.%I WHERE %I IS NOT NULL', column_name, table_schema, table_name, column_name)
		FROM information_schema.columns
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
			AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY', 'USER-DEFINED')
			AND NOT table_name = ANY($1)`, skip)
	if err != nil {
		t.Fatal(err)
	}
	queries, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(queries) == 0 {
		t.Fatalf("list columns: %d, %v", len(queries), err)
	}
	var b strings.Builder
	for _, q := range queries {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for _, v := range vals {
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
