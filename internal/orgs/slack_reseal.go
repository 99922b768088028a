package orgs

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
)

// ResealSlackWebhookTx re-encrypts, in tx, every organisation's Slack
// webhook URL under the store's current key (sealing those stored in
// plaintext) and returns the organisations changed. It is the only writer
// of orgs.slack_webhook_url besides SetSlackWebhook and Update: the Slack
// package's key rotation calls it in its own transaction.
func (s *Store) ResealSlackWebhookTx(ctx context.Context, tx pgx.Tx) ([]int64, error) {
	ids, err := secretbox.ResealRows[int64](ctx, tx, s.box,
		`SELECT id, slack_webhook_url FROM orgs WHERE slack_webhook_url <> '' FOR UPDATE`,
		`UPDATE orgs SET slack_webhook_url = $2 WHERE id = $1`)
	if err != nil {
		return nil, fmt.Errorf("reseal Slack webhook URLs: %w", err)
	}
	return ids, nil
}
