package github

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/jobs"
)

// EventsArgs carries up to 100 raw events from one poll.
type EventsArgs struct {
	Feed   string            `json:"feed"`
	Events []json.RawMessage `json:"events"`
}

// Kind implements river.JobArgs.
func (EventsArgs) Kind() string { return "github_events" }

// InsertOpts puts event batches on the scan queue.
func (EventsArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: jobs.QueueScan} }

// EventsWorker turns events into documents and hands them to the pipeline.
type EventsWorker struct {
	river.WorkerDefaults[EventsArgs]
	pipeline *crawler.Pipeline
	logger   *slog.Logger
	events   *prometheus.CounterVec
}

// NewEventsWorker returns the worker. reg may be nil.
func NewEventsWorker(p *crawler.Pipeline, reg prometheus.Registerer, logger *slog.Logger) *EventsWorker {
	w := &EventsWorker{pipeline: p, logger: logger, events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "leakwatch", Subsystem: "github", Name: "events_total",
		Help: "GitHub events processed, by type and outcome (scanned, ignored, unknown, malformed).",
	}, []string{"type", "outcome"})}
	if reg != nil {
		reg.MustRegister(w.events)
	}
	return w
}

// Work scans a batch. Recording findings is idempotent, so a retried batch
// repeats nothing visible.
func (w *EventsWorker) Work(ctx context.Context, job *river.Job[EventsArgs]) error {
	var docs []crawler.Document
	for _, raw := range job.Args.Events {
		ev, err := decodeEvent(raw)
		if err != nil {
			w.events.WithLabelValues("", "malformed").Inc()
			w.logger.Warn("skipping malformed event", slog.Any("error", err))
			continue
		}
		d, known, err := Documents(ev)
		switch {
		case err != nil:
			w.events.WithLabelValues(ev.GetType(), "malformed").Inc()
			w.logger.Warn("skipping event with malformed payload", slog.String("event_id", ev.GetID()), slog.Any("error", err))
		case !known:
			w.events.WithLabelValues("other", "unknown").Inc()
		case len(d) == 0:
			w.events.WithLabelValues(ev.GetType(), "ignored").Inc()
		default:
			w.events.WithLabelValues(ev.GetType(), "scanned").Inc()
			docs = append(docs, d...)
		}
	}
	if _, err := w.pipeline.Process(ctx, docs); err != nil {
		return fmt.Errorf("events of %s: %w", job.Args.Feed, err)
	}
	return nil
}

// AddWorkers registers the GitHub workers.
func AddWorkers(ws *river.Workers, w *EventsWorker) { river.AddWorker(ws, w) }
