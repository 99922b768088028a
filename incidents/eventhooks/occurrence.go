package eventhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// OccurrenceArgs delivers occurrence.added for one sighting to one
// subscription.
type OccurrenceArgs struct {
	SubscriptionID int64 `json:"subscription_id" river:"unique"`
	OccurrenceID   int64 `json:"occurrence_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (OccurrenceArgs) Kind() string { return "event_webhook_occurrence" }

// InsertOpts makes the delivery unique per sighting and subscription.
func (OccurrenceArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueNotify, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// OccurrenceAddedTx queues occurrence.added to every enabled subscription
// of the incident's organisation that wants it (incidents.OccurrenceNotifier).
func (n *Notifier) OccurrenceAddedTx(ctx context.Context, tx pgx.Tx, incidentID, occurrenceID int64) error {
	ids, err := subscribersTx(ctx, tx, incidentID, EventOccurrenceAdded)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := n.river.InsertTx(ctx, tx, OccurrenceArgs{SubscriptionID: id, OccurrenceID: occurrenceID}, nil); err != nil {
			return fmt.Errorf("queue occurrence webhook: %w", err)
		}
	}
	return nil
}

type occurrenceWorker struct {
	river.WorkerDefaults[OccurrenceArgs]
	w *Worker
}

func (ow *occurrenceWorker) Timeout(*river.Job[OccurrenceArgs]) time.Duration { return time.Minute }

func (ow *occurrenceWorker) Work(ctx context.Context, job *river.Job[OccurrenceArgs]) error {
	w, a := ow.w, job.Args
	sub, ok, err := w.subscription(ctx, a.SubscriptionID)
	if !ok || err != nil {
		return err
	}
	url, secret := sub.url, sub.secret
	now := w.now()
	msgID := fmt.Sprintf("msg_lwocc_%d_%d", a.OccurrenceID, a.SubscriptionID)
	sn, err := w.incidents.OccurrenceSnapshot(ctx, a.OccurrenceID)
	if errors.Is(err, incidents.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	incidentID := sn.IncidentID
	p := Payload{Type: EventOccurrenceAdded, ID: msgID, Timestamp: now, Data: dataOf(sn)}
	p.Data.Entry = "occurrence"
	if w.baseURL != "" {
		p.Data.URL = fmt.Sprintf("%s/incidents#incident-%d", w.baseURL, incidentID)
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode occurrence.added: %w", err)
	}
	return w.deliver(ctx, a.SubscriptionID, url, secret, msgID, EventOccurrenceAdded, &incidentID, body, now)
}
