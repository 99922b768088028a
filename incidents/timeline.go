package incidents

import (
	"context"

	"github.com/jackc/pgx/v5"
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

// SetTimelineNotifier installs the hook; call it before the Service is
// used. nil (the default) tells nobody.
func (s *Service) SetTimelineNotifier(n TimelineNotifier) { s.timeline = n }
