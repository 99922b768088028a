package incidents

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
)

// This file holds what the notifiers (incidents/slack, incidents/eventhooks)
// ask of the incidents tables, so that only this package writes them.

// ResealEscalationSlackURLTx re-encrypts, in tx, every organisation's
// escalation Slack URL under the Service's current key (sealing those
// stored in plaintext) and returns the organisations changed; the Slack
// package's key rotation calls it in its own transaction.
func (s *Service) ResealEscalationSlackURLTx(ctx context.Context, tx pgx.Tx) ([]int64, error) {
	ids, err := secretbox.ResealRows[int64](ctx, tx, s.box,
		`SELECT org_id, escalation_slack_url FROM incident_settings WHERE escalation_slack_url <> '' FOR UPDATE`,
		`UPDATE incident_settings SET escalation_slack_url = $2 WHERE org_id = $1`)
	if err != nil {
		return nil, fmt.Errorf("reseal escalation Slack URLs: %w", err)
	}
	return ids, nil
}

// MarkNotified records that the incident's alert reached its first
// destination (kept from the first time).
func (s *Service) MarkNotified(ctx context.Context, incidentID int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE incidents SET notified_at = coalesce(notified_at, now()) WHERE id = $1`, incidentID); err != nil {
		return fmt.Errorf("mark incident %d notified: %w", incidentID, err)
	}
	return nil
}

// MarkEntryNotified records that a timeline entry was sent (kept from the
// first time).
func (s *Service) MarkEntryNotified(ctx context.Context, eventID int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE incident_events SET notified_at = coalesce(notified_at, now()) WHERE id = $1`, eventID); err != nil {
		return fmt.Errorf("mark timeline entry %d notified: %w", eventID, err)
	}
	return nil
}
