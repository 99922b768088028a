// Package github crawls GitHub's public events stream at full fidelity.
//
// One Poller leads across all processes (a PostgreSQL advisory lock) and
// reads every feed: the global /events timeline and the extra feeds
// organisations watch (their GitHub organisation, people, repositories). It
// uses conditional requests (ETag, If-None-Match: a 304 costs no rate
// limit), all three pages of a timeline, GitHub's pace (X-Poll-Interval) and
// a TokenPool. New events are handed to River in the same transaction that
// advances the feed's checkpoint, so a crash loses nothing and repeats
// nothing visible; when a poll's pages share no event with the previous
// poll, the gap is recorded and counted, never silent.
//
// Event jobs scan the text events carry and queue fetch jobs for what they
// only point at: every commit of a push (added lines, with new-file line
// numbers and blob URLs), edited wiki pages, and whole trees of repositories
// made public.
package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakwatch/leakwatch/internal/database"
	"github.com/leakwatch/leakwatch/internal/jobs"
)

// FeedPublic is the name of the global public events feed.
const FeedPublic = "github:events"

// maxPages is how deep a timeline goes: 300 events in pages of 100.
const maxPages = 3

// leaderLock is the advisory lock whose holder polls every GitHub feed.
const leaderLock = "leakwatch-github-poller"

// Poller polls the GitHub feeds.
type Poller struct {
	gh          *Client
	pool        *pgxpool.Pool
	river       *jobs.Client
	feed        Feed
	watches     bool
	minInterval time.Duration
	logger      *slog.Logger
	now         func() time.Time
	m           *pollMetrics

	mu sync.Mutex
	// cps caches checkpoints: while this process leads, only it writes them.
	cps       map[string]checkpoint
	notBefore map[string]time.Time // feed → rate-limited until
	failing   map[string]bool      // feed → its last poll failed (logged once per change)
	lastPoll  map[string]time.Time
	lastSave  time.Time
	lastPrune time.Time
}

// PollerConfig configures a Poller.
type PollerConfig struct {
	Client *Client
	Pool   *pgxpool.Pool
	River  *jobs.Client
	Feed   string // checkpoint name of the main feed; FeedPublic for /events
	Path   string // its API path relative to the base URL, e.g. "events"
	// NoWatches leaves the organisations' watched feeds alone (tests).
	NoWatches bool
	// MinInterval bounds how long a feed waits between polls, whatever
	// GitHub says (tests poll fast; production keeps GitHub's pace).
	MinInterval time.Duration
	Logger      *slog.Logger
	// Registerer receives the poller's metrics (optional).
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

type pollMetrics struct {
	polls   *prometheus.CounterVec
	events  *prometheus.CounterVec
	gaps    *prometheus.CounterVec
	missed  *prometheus.CounterVec
	lag     *prometheus.HistogramVec
	lastOK  *prometheus.GaugeVec
	leading prometheus.Gauge
}

func newPollMetrics(reg prometheus.Registerer) *pollMetrics {
	m := &pollMetrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "polls_total",
			Help: "Feed polls, by feed and outcome (new, not_modified, error, rate_limited)."}, []string{"feed", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "feed_events_total",
			Help: "New events taken from a feed."}, []string{"feed"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "gaps_total",
			Help: "Polls that shared no event with the previous poll: events were missed."}, []string{"feed"}),
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "missed_events_estimate_total",
			Help: "Upper-bound estimate of events missed in gaps."}, []string{"feed"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "leakwatch", Subsystem: "github", Name: "event_fetch_lag_seconds",
			Help:    "Time from an event's created_at to the poll that fetched it.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 16)}, []string{"feed"}),
		lastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "leakwatch", Subsystem: "github", Name: "feed_last_success_timestamp_seconds",
			Help: "When a feed was last polled successfully."}, []string{"feed"}),
		leading: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "leakwatch", Subsystem: "github", Name: "poller_leader",
			Help: "1 while this process polls the GitHub feeds."}),
	}
	if reg != nil {
		reg.MustRegister(m.polls, m.events, m.gaps, m.missed, m.lag, m.lastOK, m.leading)
	}
	return m
}

// NewPoller returns a Poller.
func NewPoller(cfg PollerConfig) *Poller {
	if cfg.Feed == "" {
		cfg.Feed = FeedPublic
	}
	if cfg.Path == "" {
		cfg.Path = "events"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Poller{gh: cfg.Client, pool: cfg.Pool, river: cfg.River, feed: Feed{Name: cfg.Feed, Path: cfg.Path},
		watches: !cfg.NoWatches, minInterval: cfg.MinInterval, logger: cfg.Logger, now: cfg.Now,
		m: newPollMetrics(cfg.Registerer), cps: map[string]checkpoint{}, notBefore: map[string]time.Time{}, lastPoll: map[string]time.Time{}, failing: map[string]bool{}}
}

type checkpoint struct {
	lastID   int64
	etag     string
	interval time.Duration
	next     time.Time
}

// PollResult says what one poll did.
type PollResult struct {
	NotModified bool
	Events      int // new events handed on
	Gap         bool
	Missed      int64         // upper-bound estimate of events missed in the gap
	Interval    time.Duration // how long to wait before the next poll
}

// PollOnce polls the main feed once.
func (p *Poller) PollOnce(ctx context.Context) (PollResult, error) { return p.PollFeed(ctx, p.feed) }

// PollFeed fetches a feed's timeline once, all pages down to the last event
// already seen, and queues the new events with the new checkpoint.
func (p *Poller) PollFeed(ctx context.Context, feed Feed) (PollResult, error) {
	b, err := p.fetchFeed(ctx, feed)
	if err != nil || !b.commit {
		return b.res, err
	}
	return p.commitFeed(ctx, b)
}

// pollBatch is a fetched poll waiting to be committed.
type pollBatch struct {
	feed      Feed
	cp        checkpoint // the checkpoint the poll started from
	res       PollResult
	commit    bool // false: nothing to commit (a 304, already saved)
	fresh     []json.RawMessage
	createdAt []time.Time
	maxID     int64
	oldest    int64
	etag      string
	fetched   time.Time
	lagMS     *int64
}

// fetchFeed reads the timeline and works out the new events and gap. The
// cached checkpoint moves on at once; a failed commit forgets it, so the
// next poll re-reads the saved one and nothing is skipped.
func (p *Poller) fetchFeed(ctx context.Context, feed Feed) (pollBatch, error) {
	cp, err := p.cachedCheckpoint(ctx, feed)
	if err != nil {
		return pollBatch{}, err
	}
	res := PollResult{Interval: cp.interval}
	var (
		fresh     []json.RawMessage
		maxID     = cp.lastID
		etag      string
		first     = cp.lastID == 0 // a first poll takes all there is
		reached   bool
		oldest    int64
		newestAt  time.Time
		createdAt []time.Time
	)
	for page := 1; page <= maxPages; page++ {
		req, err := p.gh.NewRequest(http.MethodGet, fmt.Sprintf("%s?per_page=100&page=%d", feed.Path, page), nil)
		if err != nil {
			return pollBatch{res: res}, fmt.Errorf("build request: %w", err)
		}
		if page == 1 && cp.etag != "" {
			req.Header.Set("If-None-Match", cp.etag)
		}
		var raws []json.RawMessage
		resp, err := p.gh.Do(ctx, req, &raws)
		if page == 1 && resp != nil {
			if iv := pollInterval(resp.Header); iv > 0 {
				res.Interval = iv
			}
		}
		if resp != nil && resp.StatusCode == http.StatusNotModified {
			res.NotModified = true
			p.m.polls.WithLabelValues(feed.Name, "not_modified").Inc()
			return pollBatch{res: res}, p.saveNotModified(ctx, feed, res.Interval)
		}
		if err != nil {
			p.saveError(ctx, feed, err)
			return pollBatch{res: res}, fmt.Errorf("GET %s page %d: %w", feed.Path, page, err)
		}
		if page == 1 {
			etag = resp.Header.Get("ETag")
		}
		for _, raw := range raws {
			head, err := eventHead(raw)
			if err != nil {
				p.logger.Warn("skipping malformed event in timeline", slog.String("feed", feed.Name), slog.Any("error", err))
				continue
			}
			if oldest == 0 || head.id < oldest {
				oldest = head.id
			}
			if head.id <= cp.lastID {
				reached = true
				continue
			}
			fresh = append(fresh, raw)
			createdAt = append(createdAt, head.at)
			if head.id > maxID {
				maxID = head.id
				newestAt = head.at
			}
		}
		if (reached && !first) || resp.NextPage == 0 {
			break
		}
	}
	fetched := p.now()
	if !first && !reached && len(fresh) > 0 {
		res.Gap = true
		res.Missed = max(oldest-cp.lastID-1, 0)
		p.logger.Warn("events were missed between polls", slog.String("feed", feed.Name),
			slog.Int64("last_seen_id", cp.lastID), slog.Int64("oldest_fetched_id", oldest), slog.Int64("estimated_missed", res.Missed))
	}
	res.Events = len(fresh)
	var lagMS *int64
	if !newestAt.IsZero() {
		l := fetched.Sub(newestAt).Milliseconds()
		lagMS = &l
	}
	p.remember(feed, checkpoint{lastID: maxID, etag: etag, interval: res.Interval, next: fetched.Add(res.Interval)})
	return pollBatch{feed: feed, cp: cp, res: res, commit: true, fresh: fresh, createdAt: createdAt, maxID: maxID,
		oldest: oldest, etag: etag, fetched: fetched, lagMS: lagMS}, nil
}

// commitFeed queues a batch's events and saves its checkpoint in one
// transaction.
func (p *Poller) commitFeed(ctx context.Context, b pollBatch) (PollResult, error) {
	feed, cp, res, fresh, fetched, lagMS := b.feed, b.cp, b.res, b.fresh, b.fetched, b.lagMS
	maxID, etag, oldest := b.maxID, b.etag, b.oldest
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if len(fresh) > 0 {
			// Oldest first, so jobs tend to run in event order.
			for i, j := 0, len(fresh)-1; i < j; i, j = i+1, j-1 {
				fresh[i], fresh[j] = fresh[j], fresh[i]
			}
			if err := queueEventsTx(ctx, tx, p.river, feed.Name, fresh); err != nil {
				return err
			}
		}
		// One round trip for the bookkeeping: the poller must keep up with a
		// timeline that turns over 300 events in seconds.
		batch := &pgx.Batch{}
		if len(fresh) > 0 {
			batch.Queue(`INSERT INTO crawl_feed_polls (feed, polled_at, events, lag_ms) VALUES ($1, $2, $3, $4)`,
				feed.Name, fetched, len(fresh), lagMS)
			queueLiveHours(batch, feed.Name, b.createdAt)
		}
		gaps := 0
		if res.Gap {
			gaps = 1
			batch.Queue(`
				INSERT INTO crawl_gaps (feed, detected_at, after_event_id, before_event_id, estimated_missed)
				VALUES ($1, $2, $3, $4, $5)`, feed.Name, fetched, cp.lastID, oldest, res.Missed)
		}
		batch.Queue(`
			UPDATE crawl_feeds SET last_event_id = $2, etag = $3, poll_interval_s = $4::int,
				next_poll_at = $9::timestamptz + make_interval(secs => $4::int), last_success_at = $9::timestamptz,
				last_error = '', updated_at = $9::timestamptz, path = $5,
				events_total = events_total + $6::int, gaps_total = gaps_total + $7::int, missed_total = missed_total + $8::bigint,
				last_event_at = CASE WHEN $6::int > 0 THEN $9::timestamptz ELSE last_event_at END,
				last_lag_ms = COALESCE($10::bigint, last_lag_ms)
			WHERE name = $1`, feed.Name, maxID, etag, int(res.Interval/time.Second), feed.Path,
			len(fresh), gaps, res.Missed, fetched, lagMS)
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		p.forget(feed)
		return res, fmt.Errorf("save checkpoint of %s: %w", feed.Name, err)
	}
	p.m.polls.WithLabelValues(feed.Name, "new").Inc()
	p.m.events.WithLabelValues(feed.Name).Add(float64(len(fresh)))
	p.m.lastOK.WithLabelValues(feed.Name).Set(float64(fetched.Unix()))
	for _, at := range b.createdAt {
		if !at.IsZero() {
			p.m.lag.WithLabelValues(feed.Name).Observe(fetched.Sub(at).Seconds())
		}
	}
	if res.Gap {
		p.m.gaps.WithLabelValues(feed.Name).Inc()
		p.m.missed.WithLabelValues(feed.Name).Add(float64(res.Missed))
	}
	return res, nil
}

// cachedCheckpoint returns the feed's checkpoint, from memory once read.
func (p *Poller) cachedCheckpoint(ctx context.Context, feed Feed) (checkpoint, error) {
	p.mu.Lock()
	cp, ok := p.cps[feed.Name]
	p.mu.Unlock()
	if ok {
		return cp, nil
	}
	cp, err := p.checkpoint(ctx, feed)
	if err == nil {
		p.remember(feed, cp)
	}
	return cp, err
}

func (p *Poller) remember(feed Feed, cp checkpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cps[feed.Name] = cp
}

// forget drops a cached checkpoint (after a failed save, or on taking the
// lead, when another process may have moved it).
func (p *Poller) forget(feed Feed) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cps, feed.Name)
}

func (p *Poller) checkpoint(ctx context.Context, feed Feed) (checkpoint, error) {
	var cp checkpoint
	var secs int
	err := p.pool.QueryRow(ctx, `
		INSERT INTO crawl_feeds (name, path) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET path = EXCLUDED.path
		RETURNING last_event_id, etag, poll_interval_s, next_poll_at`, feed.Name, feed.Path).Scan(&cp.lastID, &cp.etag, &secs, &cp.next)
	if err != nil {
		return cp, fmt.Errorf("read checkpoint of %s: %w", feed.Name, err)
	}
	cp.interval = time.Duration(secs) * time.Second
	return cp, nil
}

func (p *Poller) saveNotModified(ctx context.Context, feed Feed, interval time.Duration) error {
	now := p.now()
	p.mu.Lock()
	if cp, ok := p.cps[feed.Name]; ok {
		cp.interval, cp.next = interval, now.Add(interval)
		p.cps[feed.Name] = cp
	}
	p.mu.Unlock()
	_, err := p.pool.Exec(ctx, `
		UPDATE crawl_feeds SET poll_interval_s = $2::int, next_poll_at = $3::timestamptz + make_interval(secs => $2::int),
			last_success_at = $3::timestamptz, last_error = '', updated_at = $3::timestamptz
		WHERE name = $1`, feed.Name, int(interval/time.Second), now)
	if err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", feed.Name, err)
	}
	p.m.lastOK.WithLabelValues(feed.Name).Set(float64(now.Unix()))
	return nil
}

func (p *Poller) saveError(ctx context.Context, feed Feed, cause error) {
	outcome := "error"
	if errors.Is(cause, ErrRateLimited) {
		outcome = "rate_limited"
	}
	p.m.polls.WithLabelValues(feed.Name, outcome).Inc()
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	if _, err := p.pool.Exec(ctx, `UPDATE crawl_feeds SET last_error = $2, last_error_at = now(), updated_at = now() WHERE name = $1`, feed.Name, msg); err != nil {
		p.logger.Error("record poll error", slog.Any("error", err))
	}
}

// pollInterval reads X-Poll-Interval.
func pollInterval(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("X-Poll-Interval"))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

type head struct {
	id int64
	at time.Time
}

func eventHead(raw json.RawMessage) (head, error) {
	var h struct {
		ID        string    `json:"id"`
		CreatedAt time.Time `json:"created_at"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return head{}, fmt.Errorf("decode event id: %w", err)
	}
	id, err := strconv.ParseInt(h.ID, 10, 64)
	if err != nil {
		return head{}, fmt.Errorf("event id %q is not a number", h.ID)
	}
	return head{id: id, at: h.CreatedAt}, nil
}

// Run polls every feed until ctx ends, while this process holds the
// pollers' lock; other processes wait to take over.
func (p *Poller) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := p.lead(ctx); err != nil && ctx.Err() == nil {
			p.logger.Error("poller", slog.Any("error", err))
		}
		sleep(ctx, 5*time.Second)
	}
}

func (p *Poller) lead(ctx context.Context) error {
	pc, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire lock connection: %w", err)
	}
	// The lock lives with this session; the connection never goes back to
	// the pool holding it.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if err := database.KeepSessionAlive(ctx, conn); err != nil {
		return err
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(leaderLock)).Scan(&got); err != nil {
		return fmt.Errorf("take poller lock: %w", err)
	}
	if !got {
		return nil
	}
	p.m.leading.Set(1)
	defer p.m.leading.Set(0)
	p.mu.Lock()
	// Another process may have led since: read checkpoints afresh.
	clear(p.cps)
	p.mu.Unlock()
	p.logger.Info("polling GitHub feeds")
	var feeds []Feed
	var checked time.Time
	for ctx.Err() == nil {
		if time.Since(checked) >= 5*time.Second {
			// Losing the lock's session means another process may lead now.
			if err := conn.Ping(ctx); err != nil {
				return fmt.Errorf("lost poller lock connection: %w", err)
			}
			if feeds, err = p.Feeds(ctx); err != nil {
				return err
			}
			checked = time.Now()
		}
		wait, err := p.pollDue(ctx, feeds)
		if err != nil {
			return err
		}
		sleep(ctx, wait)
	}
	return nil
}

// Feeds returns the feeds to poll: the main one and, unless disabled, every
// feed an organisation watches.
func (p *Poller) Feeds(ctx context.Context) ([]Feed, error) {
	feeds := []Feed{p.feed}
	if !p.watches {
		return feeds, nil
	}
	watched, err := watchedFeeds(ctx, p.pool)
	if err != nil {
		return nil, err
	}
	return append(feeds, watched...), nil
}

// pollDue polls the feeds whose time has come and returns how long to wait
// before the next one is due.
func (p *Poller) pollDue(ctx context.Context, feeds []Feed) (time.Duration, error) {
	next := map[string]time.Time{}
	for _, f := range feeds {
		cp, err := p.cachedCheckpoint(ctx, f)
		if err != nil {
			return 0, err
		}
		next[f.Name] = cp.next
	}
	wait := 5 * time.Second // picks up new watches
	for _, f := range feeds {
		now := p.now()
		p.mu.Lock()
		due := next[f.Name] // zero: never polled
		if last, ok := p.lastPoll[f.Name]; ok && p.minInterval > 0 && last.Add(p.minInterval).Before(due) {
			due = last.Add(p.minInterval)
		}
		if nb := p.notBefore[f.Name]; nb.After(due) {
			due = nb
		}
		p.mu.Unlock()
		if due.After(now) {
			wait = min(wait, due.Sub(now))
			continue
		}
		p.mu.Lock()
		p.lastPoll[f.Name] = now
		p.mu.Unlock()
		started := time.Now()
		res, err := p.PollFeed(ctx, f)
		took := time.Since(started)
		if ctx.Err() != nil {
			return 0, nil
		}
		if err != nil {
			backoff := time.Minute
			var rl *RateLimitedError
			if errors.As(err, &rl) {
				backoff = max(time.Until(rl.Until), time.Second)
				p.logger.Warn("rate limited; feed waits for a token", slog.String("feed", f.Name), slog.Time("until", rl.Until))
			}
			p.mu.Lock()
			p.notBefore[f.Name] = p.now().Add(backoff)
			repeat := p.failing[f.Name]
			p.failing[f.Name] = true
			p.mu.Unlock()
			// No network fails every poll the same way: say it when it
			// starts, not every minute (the poll metrics count each one).
			if rl == nil && repeat {
				p.logger.Debug("poll failed again", slog.String("feed", f.Name), slog.Any("error", err))
			} else if rl == nil {
				p.logger.Error("poll failed; retrying every minute, logged again when it recovers", slog.String("feed", f.Name), slog.Any("error", err))
			}
			wait = min(wait, backoff)
			continue
		}
		p.mu.Lock()
		recovered := p.failing[f.Name]
		delete(p.failing, f.Name)
		p.mu.Unlock()
		if recovered {
			p.logger.Info("poll recovered", slog.String("feed", f.Name))
		}
		p.logger.Debug("polled", slog.String("feed", f.Name), slog.Int("events", res.Events), slog.Bool("not_modified", res.NotModified), slog.Bool("gap", res.Gap), slog.Duration("took", took))
		iv := res.Interval
		if p.minInterval > 0 {
			iv = min(iv, p.minInterval)
		}
		wait = min(wait, max(iv, 10*time.Millisecond))
	}
	p.housekeeping(ctx)
	return wait, nil
}

// housekeeping saves token budgets for the dashboard and prunes poll stats.
func (p *Poller) housekeeping(ctx context.Context) {
	now := p.now()
	if now.Sub(p.lastSave) >= 10*time.Second {
		p.lastSave = now
		if err := SaveBudgets(ctx, p.pool, p.gh.Tokens.Budgets()); err != nil {
			p.logger.Warn("save token budgets", slog.Any("error", err))
		}
	}
	if now.Sub(p.lastPrune) >= 5*time.Minute {
		p.lastPrune = now
		if _, err := p.pool.Exec(ctx, `DELETE FROM crawl_feed_polls WHERE polled_at < $1`, now.Add(-time.Hour)); err != nil {
			p.logger.Warn("prune poll stats", slog.Any("error", err))
		}
	}
}

func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

func sleep(ctx context.Context, d time.Duration) {
	_ = sleepCtx(ctx, d)
}
