package slack

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// Notifier is Slack's incidents.TimelineNotifier: it only queues SyncArgs
// in the entry's transaction, so it needs nothing but a River client and
// can be built before the incidents.Service it listens to (the Service,
// which acts on incidents from Slack, is built after).
type Notifier struct {
	river *jobs.Client
}

// NewNotifier returns the notifier. riverClient may be insert-only.
func NewNotifier(riverClient *jobs.Client) *Notifier { return &Notifier{river: riverClient} }

var _ incidents.TimelineNotifier = (*Notifier)(nil)

// quietKinds are timeline entries kept for the dashboard and the audit
// trail but never sent to Slack: a secret the key was rotated away from,
// seen again, is dead (the README promises "recorded, no alert").
var quietKinds = map[string]bool{"seen_after_rotation": true}

// TimelineEventTx queues the Slack update for a timeline entry in the
// transaction that wrote it (the incidents package's hook).
func (n *Notifier) TimelineEventTx(ctx context.Context, tx pgx.Tx, incidentID, eventID int64, kind string) error {
	if quietKinds[kind] {
		return nil
	}
	if _, err := n.river.InsertTx(ctx, tx, SyncArgs{IncidentID: incidentID, EventID: eventID}, nil); err != nil {
		return fmt.Errorf("queue Slack update of incident %d (%s): %w", incidentID, kind, err)
	}
	return nil
}
