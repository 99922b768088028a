package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// EventsArgs points at a batch of up to 100 raw events from one poll, kept
// in github_event_batches until the job ends: River keeps finished jobs'
// arguments for a day, and event payloads hold leaked text.
type EventsArgs struct {
	Feed  string `json:"feed"`
	Batch int64  `json:"batch"`
	// Events is how jobs queued before batches existed carried the
	// payloads; it is removed from the job when the job completes.
	Events []json.RawMessage `json:"events,omitempty"`
}

// Kind implements river.JobArgs.
func (EventsArgs) Kind() string { return "github_events" }

// InsertOpts puts event batches on the scan queue.
func (EventsArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: jobs.QueueScan} }

// EventsWorker turns events into documents and hands them to the pipeline.
type EventsWorker struct {
	river.WorkerDefaults[EventsArgs]
	pool     *pgxpool.Pool
	pipeline *crawler.Pipeline
	logger   *slog.Logger
	events   *prometheus.CounterVec
	// unknownFields counts top-level event fields this code does not know.
	unknownFields *prometheus.CounterVec
	// forks are repositories seen created by ForkEvents (push priority);
	// pushes counts push-fetch coverage (WithPushCoverage).
	forks  *forkSet
	pushes *PushCoverage
}

// WithPushCoverage makes the worker count the pushes it queues. It returns w.
func (w *EventsWorker) WithPushCoverage(c *PushCoverage) *EventsWorker {
	w.pushes = c
	return w
}

// NewEventsWorker returns the worker; pool holds the event batches. reg may
// be nil.
func NewEventsWorker(pool *pgxpool.Pool, p *crawler.Pipeline, reg prometheus.Registerer, logger *slog.Logger) *EventsWorker {
	w := &EventsWorker{pool: pool, pipeline: p, logger: logger, forks: newForkSet(), events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "leakwatch", Subsystem: "github", Name: "events_total",
		Help: "GitHub events processed, by type and outcome (scanned, fetched, ignored, unknown, malformed).",
	}, []string{"type", "outcome"}),
		unknownFields: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "leakwatch", Subsystem: "github", Name: "event_unknown_fields_total",
			Help: "Event and payload fields not known to the crawler (ignored), by event type.",
		}, []string{"type"}),
	}
	if reg != nil {
		reg.MustRegister(w.events, w.unknownFields)
	}
	return w
}

// eventsTimeout bounds one batch: 100 events scanned in memory and the
// findings recorded take well under a second.
const eventsTimeout = 30 * time.Second

// queueEventsTx keeps a poll's new events (oldest first) in batches of 100
// and queues a job per batch for the events worker, all in the caller's
// transaction. The jobs carry the batch ids, never the payloads.
func queueEventsTx(ctx context.Context, tx pgx.Tx, client *jobs.Client, feed string, events []json.RawMessage) error {
	var batches []string
	for i := 0; i < len(events); i += 100 {
		b, err := json.Marshal(events[i:min(i+100, len(events))])
		if err != nil {
			return fmt.Errorf("encode event batch: %w", err)
		}
		batches = append(batches, string(b))
	}
	if len(batches) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO github_event_batches (feed, events)
		SELECT $1, e::json FROM unnest($2::text[]) WITH ORDINALITY AS t (e, n) ORDER BY n
		RETURNING id`, feed, batches)
	if err != nil {
		return fmt.Errorf("keep event batches of %s: %w", feed, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("keep event batches of %s: %w", feed, err)
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: EventsArgs{Feed: feed, Batch: id}}
	}
	if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("queue events: %w", err)
	}
	return nil
}

// Timeout keeps a batch well inside the rescue window.
func (w *EventsWorker) Timeout(*river.Job[EventsArgs]) time.Duration { return eventsTimeout }

// Work loads the job's batch, scans it, queues the fetch jobs its events ask
// for (pushes, wiki edits, repositories made public), then deletes the batch
// in the transaction that completes the job: a retry after a crash still
// finds it, a completed job leaves no text behind. Recording findings is
// idempotent and fetch jobs are unique, so a retried batch repeats nothing
// visible.
func (w *EventsWorker) Work(ctx context.Context, job *river.Job[EventsArgs]) error {
	events := job.Args.Events
	if job.Args.Batch != 0 {
		var raw []byte
		err := w.pool.QueryRow(ctx, `SELECT events FROM github_event_batches WHERE id = $1`, job.Args.Batch).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			// Deleted only with the job's completion: nothing left to do.
			w.logger.Warn("event batch already handled", slog.Int64("batch", job.Args.Batch), slog.Int64("job_id", job.ID))
			return nil
		}
		if err != nil {
			return fmt.Errorf("load event batch %d: %w", job.Args.Batch, err)
		}
		if err := json.Unmarshal(raw, &events); err != nil {
			return fmt.Errorf("decode event batch %d: %w", job.Args.Batch, err)
		}
	}
	if err := w.handle(ctx, job.Args.Feed, events, job.CreatedAt); err != nil {
		if job.Args.Batch != 0 && job.Attempt >= job.MaxAttempts {
			// River discards the job now; its text must not stay behind.
			w.logger.Error("event batch dropped after its last attempt", slog.Int64("batch", job.Args.Batch),
				slog.Int("events", len(events)), slog.Any("error", err))
			if _, derr := w.pool.Exec(context.WithoutCancel(ctx), `DELETE FROM github_event_batches WHERE id = $1`, job.Args.Batch); derr != nil {
				return fmt.Errorf("%w (and delete event batch %d: %w)", err, job.Args.Batch, derr)
			}
		}
		return err
	}
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if job.Args.Batch != 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM github_event_batches WHERE id = $1`, job.Args.Batch); err != nil {
				return fmt.Errorf("delete event batch %d: %w", job.Args.Batch, err)
			}
		} else if _, err := tx.Exec(ctx, `UPDATE river_job SET args = args - 'events' WHERE id = $1`, job.ID); err != nil {
			return fmt.Errorf("drop events of job %d: %w", job.ID, err)
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("complete events job %d: %w", job.ID, err)
		}
		return nil
	})
	return err
}

// handle scans raw events read at fetchedAt and queues the fetch jobs they
// ask for. Every path that brings events (a live poll's job, an archive
// backfill) goes through it, so they are processed alike.
func (w *EventsWorker) handle(ctx context.Context, feed string, events []json.RawMessage, fetchedAt time.Time) error {
	_, err := w.handleVia(ctx, feed, events, fetchedAt, ViaLive)
	return err
}

// Ways an event reaches the pipeline, kept on every sighting.
const (
	ViaLive    = "live"
	ViaArchive = "archive"
)

// handleVia is handle for events reached via (ViaLive, ViaArchive): the
// documents and fetch jobs carry it so sightings say how they were found.
// It returns how many events were decoded and planned (malformed ones are
// counted skips).
func (w *EventsWorker) handleVia(ctx context.Context, feed string, events []json.RawMessage, fetchedAt time.Time, via string) (int, error) {
	handled := 0
	var docs []crawler.Document
	var follow []river.InsertManyParams
	seen := map[string]bool{}
	for _, raw := range events {
		ev, unknown, err := decodeEvent(raw)
		if err != nil {
			w.events.WithLabelValues("", "malformed").Inc()
			w.logger.Warn("skipping malformed event", slog.Any("error", err))
			continue
		}
		if len(unknown) > 0 {
			w.unknownFields.WithLabelValues(ev.GetType()).Add(float64(len(unknown)))
			w.logger.Debug("event has unknown fields", slog.String("event_id", ev.GetID()), slog.Any("fields", unknown))
		}
		plan, err := planEvent(ev)
		w.forks.add(plan.forkee)
		switch {
		case err != nil:
			w.events.WithLabelValues(ev.GetType(), "malformed").Inc()
			w.logger.Warn("skipping event with malformed payload", slog.String("event_id", ev.GetID()), slog.Any("error", err))
			continue
		case !plan.known:
			w.events.WithLabelValues("other", "unknown").Inc()
			continue
		case len(plan.unknownFields) > 0:
			w.unknownFields.WithLabelValues(ev.GetType()).Add(float64(len(plan.unknownFields)))
			w.logger.Debug("event payload has unknown fields", slog.String("event_id", ev.GetID()), slog.Any("fields", plan.unknownFields))
		}
		handled++
		switch {
		case len(plan.docs) == 0 && len(plan.jobs) == 0:
			w.events.WithLabelValues(ev.GetType(), "ignored").Inc()
		case len(plan.jobs) > 0:
			w.events.WithLabelValues(ev.GetType(), "fetched").Inc()
		default:
			w.events.WithLabelValues(ev.GetType(), "scanned").Inc()
		}
		for _, d := range plan.docs {
			// The batch was queued in the transaction that committed the
			// poll, right after the fetch: its creation is the fetch time.
			d.FetchedAt = fetchedAt
			d.Via = via
			docs = append(docs, d)
		}
		for _, a := range plan.jobs {
			a = withVia(a, via)
			// River refuses a batch holding the same unique job twice.
			if k := uniqueKey(a); !seen[k] {
				seen[k] = true
				p := river.InsertManyParams{Args: a}
				if push, ok := a.(PushArgs); ok {
					p.InsertOpts = pushInsertOpts(push, w.forks)
				}
				follow = append(follow, p)
			}
		}
	}
	if len(follow) > 0 {
		client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
		if err != nil {
			return handled, fmt.Errorf("queue fetch jobs: %w", err)
		}
		res, err := client.InsertMany(ctx, follow)
		if err != nil {
			return handled, fmt.Errorf("queue %d fetch jobs of %s: %w", len(follow), feed, err)
		}
		if err := w.pushes.noteSeen(ctx, follow, res); err != nil {
			// Coverage is a report; losing a count must not re-run the batch.
			w.logger.Warn("push coverage not counted", slog.Any("error", err))
		}
	}
	if _, err := w.pipeline.Process(ctx, docs); err != nil {
		return handled, fmt.Errorf("events of %s: %w", feed, err)
	}
	return handled, nil
}

// withVia marks a fetch job with how its event was reached (live jobs stay
// as they were, so their arguments do not change).
func withVia(a river.JobArgs, via string) river.JobArgs {
	if via == "" || via == ViaLive {
		return a
	}
	switch a := a.(type) {
	case PushArgs:
		a.Via = via
		return a
	case WikiArgs:
		a.Via = via
		return a
	case TreeArgs:
		a.Via = via
		return a
	}
	return a
}

// uniqueKey is what makes a fetch job unique (its river:"unique" fields).
func uniqueKey(a river.JobArgs) string {
	switch a := a.(type) {
	case PushArgs:
		return a.Kind() + "\x00" + a.Repo + "\x00" + a.Before + "\x00" + a.Head
	case TreeArgs:
		return a.Kind() + "\x00" + a.Repo
	case WikiArgs:
		k := a.Kind() + "\x00" + a.Repo
		for _, p := range a.Pages {
			k += "\x00" + p.Name + "@" + p.SHA + "@" + p.HTMLURL
		}
		return k
	default:
		return fmt.Sprintf("%T%+v", a, a)
	}
}

// AddWorkers registers the GitHub workers.
func AddWorkers(ws *river.Workers, w *EventsWorker) { river.AddWorker(ws, w) }
