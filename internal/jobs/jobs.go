// Package jobs holds the River plumbing every role shares: queue names, the
// client constructor and job metrics.
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// Queue names. Each is sized separately so a flood of crawl work cannot
// delay an alert.
const (
	QueueCrawl     = "crawl"
	QueueScan      = "scan"
	QueueIncidents = "incidents"
	QueueNotify    = "notify"
)

// FetchCooldown is the shortest pause between two fetches of new jobs from
// one queue.
const FetchCooldown = 10 * time.Millisecond

// Client is the River client type used throughout Leakwatch.
type Client = river.Client[pgx.Tx]

// Config sizes the queues. A zero Config makes an insert-only client (the
// web role inserts jobs but works none).
type Config struct {
	Crawl, Scan, Incidents, Notify int // max workers per queue
	Workers                        *river.Workers
	PeriodicJobs                   []*river.PeriodicJob
	Logger                         *slog.Logger
	Metrics                        *Metrics // optional
	// JobTimeout is the default time a job may run (workers may set their
	// own); RescueAfter is when a job still marked running, because its
	// process died, is run again. Zero: River's defaults (1 min, 1 h).
	JobTimeout, RescueAfter time.Duration
	TestOnly                bool
}

// NewClient builds the River client.
func NewClient(pool *pgxpool.Pool, cfg Config) (*Client, error) {
	rc := &river.Config{
		Logger:                      routineToDebug(cfg.Logger),
		CompletedJobRetentionPeriod: 24 * time.Hour,
		// River starts at most MaxWorkers jobs per fetch; with its default
		// 100 ms cooldown 64 crawl workers cap a queue at about 640 jobs/s,
		// which is what the crawl benchmark hit. A fetch is one query and runs
		// only while jobs keep arriving.
		FetchCooldown:        FetchCooldown,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		TestOnly:             cfg.TestOnly,
	}
	if cfg.Workers != nil {
		rc.Workers = cfg.Workers
		rc.Queues = map[string]river.QueueConfig{}
		for name, n := range map[string]int{QueueCrawl: cfg.Crawl, QueueScan: cfg.Scan, QueueIncidents: cfg.Incidents, QueueNotify: cfg.Notify} {
			if n > 0 {
				rc.Queues[name] = river.QueueConfig{MaxWorkers: n}
			}
		}
		rc.PeriodicJobs = cfg.PeriodicJobs
	}
	if cfg.Metrics != nil {
		rc.Middleware = []rivertype.Middleware{cfg.Metrics}
	}
	c, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("create river client: %w", err)
	}
	return c, nil
}

// Metrics counts worked jobs by kind and outcome, and times them.
type Metrics struct {
	river.MiddlewareDefaults
	worked   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers job metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		worked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "leakwatch", Subsystem: "river", Name: "jobs_worked_total",
			Help: "River jobs worked, by kind, queue and outcome (ok or error).",
		}, []string{"kind", "queue", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "leakwatch", Subsystem: "river", Name: "job_duration_seconds",
			Help:    "Time spent working River jobs, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"kind"}),
	}
	reg.MustRegister(m.worked, m.duration)
	return m
}

// Work implements rivertype.WorkerMiddleware.
func (m *Metrics) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	start := time.Now()
	err := doInner(ctx)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.worked.WithLabelValues(job.Kind, job.Queue, outcome).Inc()
	m.duration.WithLabelValues(job.Kind).Observe(time.Since(start).Seconds())
	return err
}

var _ rivertype.WorkerMiddleware = (*Metrics)(nil)
