// Package jobs holds the River plumbing every role shares: queue names, the
// client constructor and job metrics.
package jobs

import (
	"cmp"
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

// Crash recovery. River's rescuer (run by the leader every 30 s) re-runs a
// job left running by a dead process once both RescueAfter and the job's
// own timeout have passed since it started. Every job's timeout is at most
// MaxJobTimeout, and a dead leader's successor is elected well within the
// rescue window, so after a kill -9 a running job runs again within
// RecoveryBound(RescueAfterDefault), about 97 s: the README's bound.
const (
	RescueAfterDefault = 60 * time.Second
	// MaxJobTimeout is the longest timeout a job may have: incident,
	// Slack and webhook jobs use it; crawl jobs stay at 30-45 s.
	MaxJobTimeout = time.Minute
	// RescuerInterval is how often River's leader looks for stuck jobs.
	RescuerInterval = 30 * time.Second
	// LeaderTakeover is how long River's leadership stays with a dead
	// process (its 15 s lease) plus one election round.
	LeaderTakeover = 21 * time.Second
	// SchedulerInterval is how often River's leader makes retries available.
	SchedulerInterval = 5 * time.Second
)

// RecoveryBound is the longest a job left running by a killed process
// waits before it runs again, with rescue after the given window.
func RecoveryBound(rescueAfter time.Duration) time.Duration {
	return max(rescueAfter, MaxJobTimeout, LeaderTakeover) + RescuerInterval + SchedulerInterval + 2*time.Second
}

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
	// PollOnly makes River poll for new jobs and leadership instead of
	// LISTENing, which a transaction pooler (PgBouncer) does not pass.
	PollOnly bool
	TestOnly bool
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
		RetryPolicy:          &retryPolicy{rescueAfter: cmp.Or(cfg.RescueAfter, time.Hour)},
		TestOnly:             cfg.TestOnly,
		PollOnly:             cfg.PollOnly,
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

// retryPolicy is River's, except that a job rescued from a dead process runs
// again at once: it did not fail, and River's backoff (attempt⁴ seconds)
// would add minutes to a crash's recovery for a job on its third attempt.
type retryPolicy struct {
	river.DefaultClientRetryPolicy
	rescueAfter time.Duration
}

// NextRetry implements river.ClientRetryPolicy. River asks it both when a
// job fails and when its rescuer finds a job still marked running; a job
// that started at least rescueAfter ago is the rescuer's (or one that ran
// into a timeout as long as the window, which may as well retry at once).
func (p *retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	if job.State == rivertype.JobStateRunning && job.AttemptedAt != nil && time.Since(*job.AttemptedAt) >= p.rescueAfter {
		return time.Now().UTC()
	}
	return p.DefaultClientRetryPolicy.NextRetry(job)
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
