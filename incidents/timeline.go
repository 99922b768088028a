package incidents

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/crawler"
)

// TimelineNotifier hears of every timeline entry, inside the transaction
// that wrote it, so whatever it queues (Slack updates, event webhooks)
// commits or rolls back with the entry. It is the one hook through which
// incidents are communicated; implementations must only write to tx (e.g.
// River InsertTx), never call out.
type TimelineNotifier interface {
	TimelineEventTx(ctx context.Context, tx pgx.Tx, incidentID, eventID int64, kind string) error
}

// Notifiers tells several notifiers, in order.
type Notifiers []TimelineNotifier

// TimelineEventTx implements TimelineNotifier.
func (ns Notifiers) TimelineEventTx(ctx context.Context, tx pgx.Tx, incidentID, eventID int64, kind string) error {
	for _, n := range ns {
		if err := n.TimelineEventTx(ctx, tx, incidentID, eventID, kind); err != nil {
			return err
		}
	}
	return nil
}

// OccurrenceNotifier is an optional extension of a TimelineNotifier: a
// sighting added to an open incident writes no timeline entry, so a
// notifier that implements this also hears of those, in their transaction.
type OccurrenceNotifier interface {
	OccurrenceAddedTx(ctx context.Context, tx pgx.Tx, incidentID, occurrenceID int64) error
}

// OccurrenceAddedTx implements OccurrenceNotifier for those of ns that do.
func (ns Notifiers) OccurrenceAddedTx(ctx context.Context, tx pgx.Tx, incidentID, occurrenceID int64) error {
	for _, n := range ns {
		if on, ok := n.(OccurrenceNotifier); ok {
			if err := on.OccurrenceAddedTx(ctx, tx, incidentID, occurrenceID); err != nil {
				return err
			}
		}
	}
	return nil
}

// occurrenceAddedTx tells the notifier of the newest occurrence of the
// incident, if it listens for them.
func (s *Service) occurrenceAddedTx(ctx context.Context, tx pgx.Tx, incidentID int64, f crawler.Finding, dedup string) error {
	on, ok := s.timeline.(OccurrenceNotifier)
	if !ok {
		return nil
	}
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM occurrences WHERE key_id = $1 AND dedup_key = $2 AND incident_id = $3`, f.KeyID, dedup, incidentID).Scan(&id)
	if err != nil {
		return fmt.Errorf("find occurrence of incident %d: %w", incidentID, err)
	}
	if err := on.OccurrenceAddedTx(ctx, tx, incidentID, id); err != nil {
		return fmt.Errorf("notify occurrence %d of incident %d: %w", id, incidentID, err)
	}
	return nil
}
