package eventhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// EventDigestWeekly is the weekly digest, for subscriptions that ask for
// it by name (an empty filter does not include it: it is a report, not an
// event).
const EventDigestWeekly = "digest.weekly"

// DigestSweepArgs starts the weekly digest: one DigestArgs per
// subscription asking for it.
type DigestSweepArgs struct{}

// Kind implements river.JobArgs.
func (DigestSweepArgs) Kind() string { return "event_webhook_digest_sweep" }

// InsertOpts puts the sweep on the notify queue.
func (DigestSweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueNotify}
}

// DigestArgs delivers one organisation's week to one subscription.
type DigestArgs struct {
	SubscriptionID int64  `json:"subscription_id" river:"unique"`
	WeekEnd        string `json:"week_end" river:"unique"` // YYYY-MM-DD
}

// Kind implements river.JobArgs.
func (DigestArgs) Kind() string { return "event_webhook_digest" }

// InsertOpts makes the digest once per subscription and week.
func (DigestArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueNotify, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// DigestPayload is the body of a digest.weekly webhook: the incident
// figures of the dashboard (incidents.Stats over 7 days) and the number of
// stale keys.
type DigestPayload struct {
	Type      string     `json:"type"`
	ID        string     `json:"id"`
	Timestamp time.Time  `json:"timestamp"`
	Data      DigestData `json:"data"`
}

// DigestData is one organisation's week.
type DigestData struct {
	OrgID     int64           `json:"org_id"`
	WeekEnd   string          `json:"week_end"`
	Stats     incidents.Stats `json:"stats"`
	StaleKeys int             `json:"stale_keys"`
}

// DigestSweeper works DigestSweepArgs and DigestArgs.
type DigestSweeper struct {
	river.WorkerDefaults[DigestSweepArgs]
	w     *Worker
	river *jobs.Client
	inc   IncidentStats
	keys  Keys
}

// IncidentStats gives an organisation's incident figures over the last
// days (incidents.Service).
type IncidentStats interface {
	Stats(ctx context.Context, orgID int64, days int) (incidents.Stats, error)
}

// NewDigestSweeper returns the digest workers' state: w delivers, inc
// computes the figures.
func NewDigestSweeper(w *Worker, riverClient *jobs.Client, inc IncidentStats, ks Keys) *DigestSweeper {
	return &DigestSweeper{w: w, river: riverClient, inc: inc, keys: ks}
}

// Work queues one digest per subscription asking for it.
func (ds *DigestSweeper) Work(ctx context.Context, _ *river.Job[DigestSweepArgs]) error {
	rows, err := ds.w.pool.Query(ctx, `SELECT id FROM event_webhooks WHERE enabled AND $1 = ANY (events) ORDER BY id`, EventDigestWeekly)
	if err != nil {
		return fmt.Errorf("find digest subscriptions: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("find digest subscriptions: %w", err)
	}
	week := ds.w.now().UTC().Format("2006-01-02")
	for _, id := range ids {
		if _, err := ds.river.Insert(ctx, DigestArgs{SubscriptionID: id, WeekEnd: week}, nil); err != nil {
			return fmt.Errorf("queue digest: %w", err)
		}
	}
	return nil
}

type digestWorker struct {
	river.WorkerDefaults[DigestArgs]
	ds *DigestSweeper
}

func (dw *digestWorker) Timeout(*river.Job[DigestArgs]) time.Duration { return time.Minute }

func (dw *digestWorker) Work(ctx context.Context, job *river.Job[DigestArgs]) error {
	w, a := dw.ds.w, job.Args
	sub, ok, err := w.subscription(ctx, a.SubscriptionID)
	if !ok || err != nil {
		return err
	}
	orgID, url, secret := sub.orgID, sub.url, sub.secret
	now := w.now()
	msgID := fmt.Sprintf("msg_lwdigest_%s_%d", a.WeekEnd, a.SubscriptionID)
	p := DigestPayload{Type: EventDigestWeekly, ID: msgID, Timestamp: now, Data: DigestData{OrgID: orgID, WeekEnd: a.WeekEnd}}
	if p.Data.Stats, err = dw.ds.inc.Stats(ctx, orgID, 7); err != nil {
		return err
	}
	if p.Data.StaleKeys, err = dw.ds.keys.CountStaleAt(ctx, orgID, now); err != nil {
		return err
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode digest: %w", err)
	}
	return w.deliver(ctx, a.SubscriptionID, url, secret, msgID, EventDigestWeekly, nil, body, now)
}
