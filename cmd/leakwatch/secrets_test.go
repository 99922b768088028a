package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/dbtest"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/secretbox"
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
	org, _, err := orgs.NewStore(pool).Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := slack.NewStore(pool, oldBox).Connect(ctx, org.ID, slack.ConnectParams{BotToken: token, SigningSecret: "signing-secret-0123456789", DefaultChannel: "C0ALERTS"}); err != nil {
		t.Fatal(err)
	}
	_, hookSecret, err := eventhooks.NewStore(pool, oldBox).Create(ctx, org.ID, "https://siem.example/hook", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A second organisation uses Slack incoming webhooks: its URL was set
	// before encryption (plaintext), its escalation URL under the old key.
	const (
		hookURL       = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnopqrstuvwx"
		escalationURL = "https://hooks.slack.com/services/T0001/B0002/zyxwvutsrqponmlkjihgfedc"
	)
	beta, _, err := orgs.NewStore(pool).Create(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	if err := orgs.NewStore(pool).SetSlackWebhook(ctx, beta.ID, hookURL); err != nil {
		t.Fatal(err)
	}
	st := incidents.DefaultSettings()
	st.EscalationSlackURL = escalationURL
	if _, err := incidents.NewService(pool, nil, slog.New(slog.DiscardHandler)).WithBox(oldBox).SetSettings(ctx, beta.ID, st, false); err != nil {
		t.Fatal(err)
	}
	var storedHook, storedEsc string
	if err := pool.QueryRow(ctx, `SELECT o.slack_webhook_url, s.escalation_slack_url FROM orgs o JOIN incident_settings s ON s.org_id = o.id WHERE o.id = $1`, beta.ID).Scan(&storedHook, &storedEsc); err != nil {
		t.Fatal(err)
	}
	if storedHook != hookURL || secretbox.KeyID(storedEsc) != "old" || strings.Contains(storedEsc, "hooks.slack.com") {
		t.Fatalf("before: webhook %q, escalation %q", storedHook, storedEsc)
	}

	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LEAKWATCH_LOG_LEVEL", "error")
	t.Setenv("LEAKWATCH_ENCRYPTION_KEY", newKey+","+oldKey)
	var out, errOut strings.Builder
	if code := run(ctx, []string{"secrets", "reseal"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("secrets reseal = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `key "new": Slack secrets of 2 organisation(s), 1 webhook subscription(s)`) {
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
	// Running it again changes nothing.
	out.Reset()
	if code := run(ctx, []string{"secrets", "reseal"}, strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), "Slack secrets of 0 organisation(s), 0 webhook") {
		t.Fatalf("second run = %d %q", code, out.String())
	}
}
