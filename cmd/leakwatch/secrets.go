package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

const secretsUsage = `Usage: leakwatch secrets reseal

Re-encrypts every secret stored at rest (Slack bot tokens, signing secrets
and incoming-webhook URLs, event webhook HMAC secrets) under the first key
of LEAKWATCH_ENCRYPTION_KEY, and seals webhook URLs set while no key was
configured. Rotating the key:

  1. generate a key: openssl rand -base64 32
  2. set LEAKWATCH_ENCRYPTION_KEY=new:<key>,old:<old key> and restart
  3. run leakwatch secrets reseal
  4. drop old:<old key> from the setting and restart`

func runSecrets(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if wantsHelp(args) {
		fmt.Fprintln(stdout, secretsUsage)
		return 0
	}
	if len(args) != 1 || args[0] != "reseal" {
		fmt.Fprintln(stderr, secretsUsage)
		return 2
	}
	cfg, ok := loadConfigOrFail(stderr)
	if !ok {
		return 2
	}
	if !cfg.Encryption.Configured() {
		fmt.Fprintln(stderr, "leakwatch secrets reseal: LEAKWATCH_ENCRYPTION_KEY is not set")
		return 2
	}
	db, err := openSchema(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch secrets reseal:", err)
		return 1
	}
	defer db.Close()
	inc := incidents.NewService(db.Pool, nil, nil, incidents.Config{Box: cfg.Encryption})
	nSlack, err := slack.NewStore(db.Pool, cfg.Encryption).Reseal(ctx,
		func(ctx context.Context, tx pgx.Tx) ([]int64, error) {
			return orgs.ResealSlackWebhooksTx(ctx, tx, cfg.Encryption)
		},
		inc.ResealEscalationSlackURLTx)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch secrets reseal:", err)
		return 1
	}
	nHooks, err := eventhooks.NewStore(db.Pool, cfg.Encryption).Reseal(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch secrets reseal:", err)
		return 1
	}
	nRevoke, err := inc.ResealRevocationSecrets(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch secrets reseal:", err)
		return 1
	}
	nKeys, err := webhook.ResealKeys(ctx, db.Pool, cfg.Encryption)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch secrets reseal:", err)
		return 1
	}
	fmt.Fprintf(stdout, "re-sealed under key %q: Slack secrets of %d organisation(s), %d webhook subscription(s), %d revocation endpoint secret(s), %d signing key(s)\n",
		cfg.Encryption.CurrentKeyID(), nSlack, nHooks, nRevoke, nKeys)
	return 0
}
