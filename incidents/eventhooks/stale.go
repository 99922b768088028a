package eventhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// StaleSweepArgs looks for keys past their maximum age (the key's own, else
// the organisation's default) and queues one key.stale delivery per key,
// staleness and subscription.
type StaleSweepArgs struct{}

// Kind implements river.JobArgs.
func (StaleSweepArgs) Kind() string { return "event_webhook_stale_sweep" }

// InsertOpts puts the sweep on the notify queue.
func (StaleSweepArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: jobs.QueueNotify} }

// StaleArgs delivers key.stale for one key to one subscription. StaleSince
// (Unix seconds) identifies the staleness: rotating the key and letting it
// age again is a new event.
type StaleArgs struct {
	SubscriptionID int64 `json:"subscription_id" river:"unique"`
	KeyID          int64 `json:"key_id" river:"unique"`
	StaleSince     int64 `json:"stale_since" river:"unique"`
}

// Kind implements river.JobArgs.
func (StaleArgs) Kind() string { return "event_webhook_stale" }

// InsertOpts makes the delivery unique per subscription, key and staleness.
func (StaleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueNotify, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// PeriodicJobs schedules the stale-key sweep, hourly, and the weekly
// digest.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return StaleSweepArgs{}, nil },
			&river.PeriodicJobOpts{ID: "event_webhook_stale_sweep", RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(7*24*time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return DigestSweepArgs{}, nil },
			&river.PeriodicJobOpts{ID: "event_webhook_weekly_digest"}),
	}
}

// Keys is what key.stale deliveries and digests read of the key registry
// (keys.Store), which owns the stale-key rule.
type Keys interface {
	StaleAt(ctx context.Context, t time.Time) ([]keys.StaleKey, error)
	CountStaleAt(ctx context.Context, orgID int64, t time.Time) (int, error)
	Key(ctx context.Context, orgID, id int64) (keys.Key, error)
}

// StaleSweeper works StaleSweepArgs.
type StaleSweeper struct {
	river.WorkerDefaults[StaleSweepArgs]
	w     *Worker
	river *jobs.Client
	keys  Keys
}

// NewStaleSweeper returns the sweep worker; it queues through riverClient
// and asks ks which keys are stale.
func NewStaleSweeper(w *Worker, riverClient *jobs.Client, ks Keys) *StaleSweeper {
	return &StaleSweeper{w: w, river: riverClient, keys: ks}
}

// AddWorkers registers the delivery workers.
func AddWorkers(workers *river.Workers, w *Worker, sw *StaleSweeper, ds *DigestSweeper) {
	river.AddWorker(workers, w)
	river.AddWorker(workers, sw)
	river.AddWorker(workers, ds)
	river.AddWorker(workers, &digestWorker{ds: ds})
	river.AddWorker(workers, &staleWorker{w: w, keys: sw.keys})
	river.AddWorker(workers, &occurrenceWorker{w: w})
}

// Work queues the deliveries, by subscription then key; River's uniqueness
// and the delivery log's message ids keep each (key, staleness,
// subscription) to one message.
func (sw *StaleSweeper) Work(ctx context.Context, _ *river.Job[StaleSweepArgs]) error {
	stale, err := sw.keys.StaleAt(ctx, sw.w.now())
	if err != nil {
		return err
	}
	if len(stale) == 0 {
		return nil
	}
	byOrg := map[int64][]keys.StaleKey{}
	for _, k := range stale {
		byOrg[k.OrgID] = append(byOrg[k.OrgID], k)
	}
	rows, err := sw.w.pool.Query(ctx, `
		SELECT id, org_id FROM event_webhooks
		WHERE enabled AND (events = '{}' OR 'key.stale' = ANY (events)) ORDER BY id`)
	if err != nil {
		return fmt.Errorf("find key.stale subscriptions: %w", err)
	}
	var all []StaleArgs
	var subID, orgID int64
	if _, err := pgx.ForEachRow(rows, []any{&subID, &orgID}, func() error {
		for _, k := range byOrg[orgID] {
			all = append(all, StaleArgs{SubscriptionID: subID, KeyID: k.ID, StaleSince: k.StaleSince})
		}
		return nil
	}); err != nil {
		return fmt.Errorf("find key.stale subscriptions: %w", err)
	}
	for _, a := range all {
		if _, err := sw.river.Insert(ctx, a, nil); err != nil {
			return fmt.Errorf("queue key.stale: %w", err)
		}
	}
	return nil
}

// StalePayload is the body of a key.stale webhook.
type StalePayload struct {
	Type      string    `json:"type"` // "key.stale"
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Data      StaleData `json:"data"`
}

// StaleData names the key and how old it is.
type StaleData struct {
	OrgID      int64      `json:"org_id"`
	Key        Key        `json:"key"`
	Owner      string     `json:"owner"`
	RotatedAt  *time.Time `json:"rotated_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	MaxAgeDays int        `json:"max_age_days"`
	StaleSince time.Time  `json:"stale_since"`
}

type staleWorker struct {
	river.WorkerDefaults[StaleArgs]
	w    *Worker
	keys Keys
}

func (sw *staleWorker) Timeout(*river.Job[StaleArgs]) time.Duration { return time.Minute }

func (sw *staleWorker) Work(ctx context.Context, job *river.Job[StaleArgs]) error {
	w, a := sw.w, job.Args
	sub, ok, err := w.subscription(ctx, a.SubscriptionID)
	if !ok || err != nil {
		return err
	}
	url, secret := sub.url, sub.secret
	now := w.now()
	msgID := fmt.Sprintf("msg_lwstale_%d_%d_%d", a.KeyID, a.StaleSince, a.SubscriptionID)
	p := StalePayload{Type: EventKeyStale, ID: msgID, Timestamp: now, Data: StaleData{StaleSince: time.Unix(a.StaleSince, 0).UTC()}}
	// The subscription's organisation is the key's: the sweep paired them.
	k, err := sw.keys.Key(ctx, sub.orgID, a.KeyID)
	if errors.Is(err, keys.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return fmt.Errorf("load key %d: %w", a.KeyID, err)
	}
	p.Data.OrgID, p.Data.Owner, p.Data.RotatedAt, p.Data.CreatedAt, p.Data.MaxAgeDays = k.OrgID, k.Owner, k.RotatedAt, k.CreatedAt, k.PolicyDays
	p.Data.Key = Key{ID: k.ID, Name: k.Name, Provider: k.Provider, Environment: k.Environment, Fingerprint: k.Fingerprint}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode key.stale: %w", err)
	}
	return w.deliver(ctx, a.SubscriptionID, url, secret, msgID, EventKeyStale, nil, body, now)
}
