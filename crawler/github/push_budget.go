package github

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Push priorities on the crawl queue (River runs priority 1 first). When
// the tokens cannot cover every push, the pushes of forks and bots wait
// behind everyone else's: a secret is most often leaked, and most urgently
// revoked, in a person's own repository.
const (
	pushPriority      = 1
	pushPriorityLater = 3
)

// isBot reports whether a GitHub login is an app's (dependabot[bot], …).
func isBot(login string) bool { return strings.HasSuffix(login, "[bot]") }

// pushInsertOpts gives a push its priority; the queue, uniqueness and the
// rest come from PushArgs.InsertOpts.
func pushInsertOpts(a PushArgs, forks *forkSet) *river.InsertOpts {
	if a.Fork || isBot(a.Actor) || forks.has(a.Repo) {
		return &river.InsertOpts{Priority: pushPriorityLater}
	}
	return &river.InsertOpts{Priority: pushPriority}
}

// pushSnooze is how long a push that found every token out of budget waits:
// until the earliest token reset, plus a second, plus up to 30 s more the
// older its event. River runs jobs of one priority in scheduled_at order, so
// when budget returns the queued pushes are fetched newest first.
func pushSnooze(until, now, eventAt time.Time) time.Duration {
	wait := max(until.Sub(now), 0) + time.Second
	if !eventAt.IsZero() {
		age := min(max(now.Sub(eventAt), 0), time.Hour)
		wait += age / 120
	}
	return wait
}

// forkSet remembers repositories ForkEvents created, in bounded memory
// (emptied when full: a forgotten fork only loses its lower priority).
type forkSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

const forkSetMax = 200_000

func newForkSet() *forkSet { return &forkSet{m: map[string]struct{}{}} }

func (s *forkSet) add(repo string) {
	if s == nil || repo == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= forkSetMax {
		clear(s.m)
	}
	s.m[repo] = struct{}{}
}

func (s *forkSet) has(repo string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[repo]
	return ok
}

// PushCoverage counts, per hour of the push events, the pushes seen in the
// stream (distinct: a push queued twice is one job) and those fetched (or
// found gone from GitHub). Their ratio says how much of the pushed code the
// token budget let Leakwatch read; every other event type is scanned from
// the stream whatever the budget.
type PushCoverage struct {
	pool     *pgxpool.Pool
	seen     prometheus.Counter
	fetched  prometheus.Counter
	deferred prometheus.Counter
}

// NewPushCoverage returns the counters. reg may be nil.
func NewPushCoverage(pool *pgxpool.Pool, reg prometheus.Registerer) *PushCoverage {
	c := &PushCoverage{pool: pool,
		seen: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "pushes_seen_total",
			Help: "Distinct pushes queued for fetching from the GitHub events stream."}),
		fetched: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "pushes_fetched_total",
			Help: "Pushes whose commits were fetched and scanned (or found gone from GitHub)."}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "pushes_deferred_total",
			Help: "Times a push waited for a token's budget to reset (snoozed, not retried)."}),
	}
	if reg != nil {
		reg.MustRegister(c.seen, c.fetched, c.deferred, c)
	}
	return c
}

// pushHour is the hour a push is counted in; a push of unknown time counts now.
func pushHour(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Hour)
}

// noteSeen counts the push jobs of an InsertMany that were new (not
// duplicates of a push already queued).
func (c *PushCoverage) noteSeen(ctx context.Context, params []river.InsertManyParams, res []*rivertype.JobInsertResult) error {
	if c == nil {
		return nil
	}
	hours := map[time.Time]int64{}
	for i, p := range params {
		a, ok := p.Args.(PushArgs)
		if !ok || i >= len(res) || res[i] == nil || res[i].UniqueSkippedAsDuplicate {
			continue
		}
		hours[pushHour(a.EventAt)]++
	}
	var n int64
	b := &pgx.Batch{}
	for h, k := range hours {
		n += k
		b.Queue(`INSERT INTO github_push_coverage (hour, seen) VALUES ($1, $2)
			ON CONFLICT (hour) DO UPDATE SET seen = github_push_coverage.seen + EXCLUDED.seen`, h, k)
	}
	if n == 0 {
		return nil
	}
	if err := c.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("count pushes seen: %w", err)
	}
	c.seen.Add(float64(n))
	return nil
}

// noteFetched counts one push done.
func (c *PushCoverage) noteFetched(ctx context.Context, eventAt time.Time) error {
	if c == nil {
		return nil
	}
	if _, err := c.pool.Exec(ctx, `INSERT INTO github_push_coverage (hour, fetched) VALUES ($1, 1)
		ON CONFLICT (hour) DO UPDATE SET fetched = github_push_coverage.fetched + 1`, pushHour(eventAt)); err != nil {
		return fmt.Errorf("count push fetched: %w", err)
	}
	c.fetched.Inc()
	return nil
}

func (c *PushCoverage) noteDeferred() {
	if c != nil {
		c.deferred.Inc()
	}
}

// PushHour is the push-fetch coverage of one hour of push events.
type PushHour struct {
	Hour    time.Time `json:"hour"`
	Seen    int64     `json:"seen"`
	Fetched int64     `json:"fetched"`
	// Ratio is fetched/seen (1 when nothing was seen). Pushes of the last
	// minutes may still be in flight.
	Ratio float64 `json:"ratio"`
}

// pushHours reads the last n hours of push coverage, newest first.
func pushHours(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, n int) ([]PushHour, error) {
	rows, err := q.Query(ctx, `
		SELECT hour, seen, fetched FROM github_push_coverage
		WHERE hour > now() - make_interval(hours => $1) ORDER BY hour DESC`, n)
	if err != nil {
		return nil, fmt.Errorf("read push coverage: %w", err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PushHour, error) {
		var h PushHour
		err := r.Scan(&h.Hour, &h.Seen, &h.Fetched)
		h.Ratio = ratio(h.Fetched, h.Seen)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("read push coverage: %w", err)
	}
	if hs == nil {
		hs = []PushHour{}
	}
	return hs, nil
}

func ratio(fetched, seen int64) float64 {
	if seen <= 0 {
		return 1
	}
	return min(float64(fetched)/float64(seen), 1)
}

var pushCoverageDesc = prometheus.NewDesc("leakwatch_github_push_coverage_ratio",
	"Pushes fetched / pushes seen, for push events of the current and the previous hour (hour label).", []string{"hour"}, nil)

// Describe implements prometheus.Collector.
func (c *PushCoverage) Describe(ch chan<- *prometheus.Desc) { ch <- pushCoverageDesc }

// Collect implements prometheus.Collector: the ratio of the current and the
// previous hour, read from the table every process counts into.
func (c *PushCoverage) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs, err := pushHours(ctx, c.pool, 2)
	if err != nil {
		return
	}
	now := pushHour(time.Now())
	for _, h := range hs {
		label := "previous"
		if h.Hour.Equal(now) {
			label = "current"
		}
		ch <- prometheus.MustNewConstMetric(pushCoverageDesc, prometheus.GaugeValue, h.Ratio, label)
	}
}
