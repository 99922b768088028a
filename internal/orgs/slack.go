package orgs

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
)

// The organisation's Slack incoming-webhook URL (orgs.slack_webhook_url) is
// written only here (SetSlackWebhook, Update, ResealSlackWebhooksTx), so
// one package seals it and one rule decides what is stored.

// SlackWebhook returns the organisation's Slack incoming-webhook URL,
// opened ("" when none is set). The URL is a credential: callers send to
// it and never log or show it.
func (s *Store) SlackWebhook(ctx context.Context, orgID int64) (string, error) {
	var stored string
	err := s.pool.QueryRow(ctx, `SELECT slack_webhook_url FROM orgs WHERE id = $1`, orgID).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("organisation %d: %w", orgID, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read slack webhook of organisation %d: %w", orgID, err)
	}
	url, err := s.box.OpenStored(stored)
	if err != nil {
		return "", fmt.Errorf("open slack webhook of organisation %d: %w", orgID, err)
	}
	return url, nil
}

// ResealSlackWebhooksTx re-encrypts every organisation's Slack webhook URL
// under box's current key, sealing those stored in plaintext, inside the
// caller's transaction (`leakwatch secrets reseal` re-seals every Slack
// secret in one), and returns the organisations whose URL changed.
func ResealSlackWebhooksTx(ctx context.Context, tx pgx.Tx, box *secretbox.Box) ([]int64, error) {
	ids, err := secretbox.ResealRows[int64](ctx, tx, box,
		`SELECT id, slack_webhook_url FROM orgs WHERE slack_webhook_url <> '' FOR UPDATE`,
		`UPDATE orgs SET slack_webhook_url = $2 WHERE id = $1`)
	if err != nil {
		return nil, fmt.Errorf("reseal slack webhooks: %w", err)
	}
	return ids, nil
}
