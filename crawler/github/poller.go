// Package github crawls GitHub's public events stream at full fidelity.
//
// One Poller leads across all processes (a PostgreSQL advisory lock) and
// reads every feed: the global /events timeline and the extra feeds
// organisations watch (their GitHub organisation, people, repositories).
// By default it paces itself to the stream, as GH Archive's crawler does:
// a conditional page-1 probe (a 304 costs no rate limit) every 250 ms to
// 2 s, pages 2 and 3 only while a hole is left down to the checkpoint,
// within a share of the TokenPool's budget (PollObey follows GitHub's
// X-Poll-Interval instead). New events are merged by id and handed to River
// in the same transaction that advances the feed's checkpoint, so a crash
// loses nothing and repeats nothing visible; every range of ids no page
// covered, between polls or between the pages of one poll, is recorded as
// a gap and counted, never silent.
//
// Event jobs scan the text events carry and queue fetch jobs for what they
// only point at: every commit of a push (added lines, with new-file line
// numbers and blob URLs), edited wiki pages, and whole trees of repositories
// made public.
package github

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakwatch/leakwatch/internal/platform/database"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
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

	mode        string
	budget      *pollBudget
	budgetShare float64

	mu sync.Mutex
	// cps caches checkpoints: while this process leads, only it writes them.
	cps       map[string]checkpoint
	states    map[string]*feedState
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
	// GitHub or the adaptive cadence says (tests poll fast).
	MinInterval time.Duration
	// Mode is PollAdaptive (default) or PollObey.
	Mode string
	// BudgetShare is the share of the token pool's hourly budget polling
	// may spend (default PollBudgetShareDefault).
	BudgetShare float64
	Logger      *slog.Logger
	// Registerer receives the poller's metrics (optional).
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

type pollMetrics struct {
	polls   *prometheus.CounterVec
	events  *prometheus.CounterVec
	dups    *prometheus.CounterVec
	gaps    *prometheus.CounterVec
	missed  *prometheus.CounterVec
	lag     *prometheus.HistogramVec
	lastOK  *prometheus.GaugeVec
	leading prometheus.Gauge
}

func newPollMetrics(reg prometheus.Registerer) *pollMetrics {
	m := &pollMetrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "polls_total",
			Help: "Feed polls, by feed and outcome (new, not_modified, partial, error, rate_limited)."}, []string{"feed", "outcome"}),
		dups: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "poll_duplicates_total",
			Help: "Events served on two pages of one poll (the pages shifted); queued once."}, []string{"feed"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "feed_events_total",
			Help: "New events taken from a feed."}, []string{"feed"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "gaps_total",
			Help: "Holes no page covered, between polls or between the pages of one poll: events were missed."}, []string{"feed"}),
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
		reg.MustRegister(m.polls, m.events, m.dups, m.gaps, m.missed, m.lag, m.lastOK, m.leading)
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
	if cfg.Mode == "" {
		cfg.Mode = PollAdaptive
	}
	if cfg.BudgetShare <= 0 || cfg.BudgetShare > 1 {
		cfg.BudgetShare = PollBudgetShareDefault
	}
	return &Poller{gh: cfg.Client, pool: cfg.Pool, river: cfg.River, feed: Feed{Name: cfg.Feed, Path: cfg.Path},
		watches: !cfg.NoWatches, minInterval: cfg.MinInterval, logger: cfg.Logger, now: cfg.Now,
		m: newPollMetrics(cfg.Registerer), cps: map[string]checkpoint{}, states: map[string]*feedState{},
		mode: cfg.Mode, budgetShare: cfg.BudgetShare,
		budget: newPollBudget(func() float64 { return cfg.BudgetShare * float64(cfg.Client.Tokens.HourlyLimit()) }, cfg.Now())}
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
	Gaps        int           // holes recorded: between polls and between pages
	Missed      int64         // upper-bound estimate of events missed in the gaps
	Interval    time.Duration // GitHub's X-Poll-Interval
	Pages       int           // pages read
	Requests    int           // requests GitHub charged (304s are free)
	Duplicates  int           // events served twice within the poll (pages shifted), dropped
}

// PollFeed fetches a feed's timeline once, page by page until the pages
// join what was already seen, and queues the new events with the new
// checkpoint and every hole left.
func (p *Poller) PollFeed(ctx context.Context, feed Feed) (PollResult, error) {
	b, err := p.fetchFeed(ctx, feed)
	if err != nil || !b.commit {
		return b.res, err
	}
	return p.commitFeed(ctx, b)
}

// pollBatch is a fetched poll waiting to be committed.
type pollBatch struct {
	feed    Feed
	cp      checkpoint // the checkpoint the poll started from
	res     PollResult
	commit  bool // false: nothing to commit (a 304, already saved)
	fresh   []freshEvent
	holes   []hole
	maxID   int64
	etag    string
	fetched time.Time
	lagMS   *int64
}

type freshEvent struct {
	head
	raw json.RawMessage
}

// page is one page of a timeline as read.
type page struct {
	n     int
	raws  []json.RawMessage
	resp  *pageResp
	err   error
	etag  string
	iv    time.Duration
	isNew bool // 200 (false: 304)
}

// pageResp is the part of a GitHub answer the poller uses.
type pageResp struct {
	StatusCode int
	NextPage   int
	ETag       string
}

// readPage fetches one page, conditionally when etag is set.
func (p *Poller) readPage(ctx context.Context, feed Feed, n int, etag string) page {
	pg := page{n: n}
	req, err := p.gh.NewRequest(http.MethodGet, fmt.Sprintf("%s?per_page=%d&page=%d", feed.Path, pageSize, n), nil)
	if err != nil {
		pg.err = fmt.Errorf("build request: %w", err)
		return pg
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := p.gh.Do(ctx, req, &pg.raws)
	if resp != nil {
		pg.resp = &pageResp{StatusCode: resp.StatusCode, NextPage: resp.NextPage, ETag: resp.Header.Get("ETag")}
		pg.iv = pollInterval(resp.Header)
		pg.etag = pg.resp.ETag
		if resp.StatusCode == http.StatusNotModified {
			return pg
		}
	}
	if err != nil {
		pg.err = fmt.Errorf("GET %s page %d: %w", feed.Path, n, err)
		return pg
	}
	pg.isNew = true
	return pg
}

// fetchFeed reads the timeline and works out the new events and holes.
//
// Page 1 is read with If-None-Match: unchanged, it costs nothing. Pages 2
// and 3 are read only while the pages read so far leave a hole between the
// checkpoint and the newest event, and both at once when the stream has
// likely run past two pages since the last poll (pages read together see
// one timeline; read one after another they shift). Each page is a
// complete range of ids, so whatever ids no page covered are recorded as
// gaps, between polls and between pages alike. Events are merged by id and
// dropped when already queued.
//
// The cached checkpoint moves on at once; a failed commit forgets it, so the
// next poll re-reads the saved one and nothing is skipped.
func (p *Poller) fetchFeed(ctx context.Context, feed Feed) (pollBatch, error) {
	cp, err := p.cachedCheckpoint(ctx, feed)
	if err != nil {
		return pollBatch{}, err
	}
	st := p.state(feed, cp)
	res := PollResult{Interval: cp.interval}
	first := cp.lastID == 0 // a first poll takes all there is
	p1 := p.readPage(ctx, feed, 1, cp.etag)
	if p1.iv > 0 {
		res.Interval = p1.iv
	}
	if p1.err == nil && !p1.isNew {
		res.NotModified = true
		p.m.polls.WithLabelValues(feed.Name, "not_modified").Inc()
		return pollBatch{res: res}, p.saveNotModified(ctx, feed, res.Interval)
	}
	if p1.err != nil {
		p.saveError(ctx, feed, p1.err)
		return pollBatch{res: res}, p1.err
	}
	var (
		spans    []span
		fresh    []freshEvent
		inPoll   = map[int64]struct{}{}
		maxID    = cp.lastID
		newestAt time.Time
	)
	p.mu.Lock()
	recent := st.recent
	p.mu.Unlock()
	take := func(pg page) {
		res.Pages++
		res.Requests++
		var sp span
		for _, raw := range pg.raws {
			h, err := eventHead(raw)
			if err != nil {
				p.logger.Warn("skipping malformed event in timeline", slog.String("feed", feed.Name), slog.Any("error", err))
				continue
			}
			if sp.lo == 0 || h.id < sp.lo {
				sp.lo = h.id
			}
			sp.hi = max(sp.hi, h.id)
			if _, dup := inPoll[h.id]; dup {
				res.Duplicates++
				continue
			}
			inPoll[h.id] = struct{}{}
			if h.id <= cp.lastID && recent.seen(h.id) {
				continue
			}
			fresh = append(fresh, freshEvent{head: h, raw: raw})
			if h.id > maxID {
				maxID = h.id
				newestAt = h.at
			}
		}
		if sp.lo != 0 {
			spans = append(spans, sp)
		}
	}
	take(p1)
	holes := coverage(cp.lastID, spans)
	more := func() bool { return p1.resp.NextPage != 0 && (first || len(holes) > 0) }
	partial := false
	for next := 2; next <= maxPages && more(); {
		pages := []int{next}
		if next == 2 && maxPages >= 3 && p.backlog(st, cp, spans) > 2*pageSize-pageSize/10 {
			pages = append(pages, 3)
		}
		got := make([]page, len(pages))
		var wg sync.WaitGroup
		for i, n := range pages {
			wg.Go(func() { got[i] = p.readPage(ctx, feed, n, "") })
		}
		wg.Wait()
		stop := false
		for _, pg := range got {
			if pg.err != nil {
				// What was read is kept; what was not is a hole, recorded.
				p.logger.Warn("timeline page failed; the poll keeps the pages it has", slog.String("feed", feed.Name),
					slog.Int("page", pg.n), slog.Any("error", pg.err))
				partial, stop = true, true
				continue
			}
			take(pg)
			if pg.resp.NextPage == 0 {
				stop = true
			}
		}
		holes = coverage(cp.lastID, spans)
		next += len(pages)
		if stop {
			break
		}
	}
	if hasPageHoles(cp.lastID, first, spans, holes) {
		still, charged := p.confirmStill(ctx, feed, p1.etag)
		if charged {
			res.Requests++
		}
		if still {
			// The timeline did not move while the pages were read: they
			// lie edge to edge, and only ids GitHub never served fall
			// between.
			holes = keepCheckpointHole(cp.lastID, first, spans, holes)
		}
	}
	fetched := p.now()
	for _, h := range holes {
		res.Gaps++
		res.Missed += h.missed()
		p.logger.Warn("events were missed", slog.String("feed", feed.Name),
			slog.Int64("after_event_id", h.after), slog.Int64("before_event_id", h.before), slog.Int64("estimated_missed", h.missed()))
	}
	res.Gap = res.Gaps > 0
	res.Events = len(fresh)
	slices.SortFunc(fresh, func(a, b freshEvent) int { return cmp.Compare(a.id, b.id) })
	var lagMS *int64
	if !newestAt.IsZero() {
		l := fetched.Sub(newestAt).Milliseconds()
		lagMS = &l
	}
	if partial {
		p.m.polls.WithLabelValues(feed.Name, "partial").Inc()
	}
	p.remember(feed, checkpoint{lastID: maxID, etag: p1.etag, interval: res.Interval, next: fetched.Add(res.Interval)})
	// Remembered now, not at commit, for the next poll may be fetched while
	// this one commits. Should the commit fail, the saved checkpoint is read
	// again and is below these ids, so they are taken again.
	p.mu.Lock()
	for _, f := range fresh {
		recent.add(f.id)
	}
	p.mu.Unlock()
	return pollBatch{feed: feed, cp: cp, res: res, commit: true, fresh: fresh, holes: holes, maxID: maxID,
		etag: p1.etag, fetched: fetched, lagMS: lagMS}, nil
}

// backlog estimates how many events arrived since the last poll: exact
// when page 1 shows the checkpoint is that far below (dense ids), else
// from the feed's rate.
func (p *Poller) backlog(st *feedState, cp checkpoint, spans []span) float64 {
	if cp.lastID == 0 || len(spans) == 0 {
		return 3 * pageSize
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st.lastStart.IsZero() {
		return 0
	}
	return st.rate * p.now().Sub(st.lastStart).Seconds()
}

// hasPageHoles reports whether a hole lies between two pages (not between
// the checkpoint and the oldest page).
func hasPageHoles(lastID int64, first bool, spans []span, holes []hole) bool {
	return len(keepCheckpointHole(lastID, first, spans, holes)) < len(holes)
}

// keepCheckpointHole drops the holes between pages, keeping the one
// between the checkpoint and the oldest page.
func keepCheckpointHole(lastID int64, first bool, spans []span, holes []hole) []hole {
	var out []hole
	for _, h := range holes {
		if !first && h.after == lastID {
			out = append(out, h)
		}
	}
	return out
}

// confirmStill re-asks page 1 with its ETag: a 304 (free) proves the
// timeline did not move while the other pages were read. On GitHub ids are
// sparse (private events take ids too), so two adjacent pages read from a
// still timeline share no event and look like a hole.
func (p *Poller) confirmStill(ctx context.Context, feed Feed, etag string) (still, charged bool) {
	if etag == "" {
		return false, false
	}
	pg := p.readPage(ctx, feed, 1, etag)
	return pg.err == nil && !pg.isNew, pg.isNew
}

// commitFeed queues a batch's events and saves its checkpoint and holes in
// one transaction.
func (p *Poller) commitFeed(ctx context.Context, b pollBatch) (PollResult, error) {
	feed, res, fetched, lagMS := b.feed, b.res, b.fetched, b.lagMS
	maxID, etag := b.maxID, b.etag
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if len(b.fresh) > 0 {
			// Oldest first, so jobs tend to run in event order.
			raws := make([]json.RawMessage, len(b.fresh))
			for i, f := range b.fresh {
				raws[i] = f.raw
			}
			if err := queueEventsTx(ctx, tx, p.river, feed.Name, raws); err != nil {
				return err
			}
		}
		// One round trip for the bookkeeping: the poller must keep up with a
		// timeline that turns over 300 events in seconds.
		batch := &pgx.Batch{}
		if len(b.fresh) > 0 {
			batch.Queue(`INSERT INTO crawl_feed_polls (feed, polled_at, events, lag_ms) VALUES ($1, $2, $3, $4)`,
				feed.Name, fetched, len(b.fresh), lagMS)
			created := make([]time.Time, len(b.fresh))
			for i, e := range b.fresh {
				created[i] = e.at
			}
			queueLiveHours(batch, feed.Name, created)
		}
		for _, h := range b.holes {
			batch.Queue(`
				INSERT INTO crawl_gaps (feed, detected_at, after_event_id, before_event_id, estimated_missed)
				VALUES ($1, $2, $3, $4, $5)`, feed.Name, fetched, h.after, h.before, h.missed())
		}
		batch.Queue(`
			UPDATE crawl_feeds SET last_event_id = $2, etag = $3, poll_interval_s = $4::int,
				next_poll_at = $9::timestamptz + make_interval(secs => $4::int), last_success_at = $9::timestamptz,
				last_error = '', updated_at = $9::timestamptz, path = $5,
				events_total = events_total + $6::int, gaps_total = gaps_total + $7::int, missed_total = missed_total + $8::bigint,
				last_event_at = CASE WHEN $6::int > 0 THEN $9::timestamptz ELSE last_event_at END,
				last_lag_ms = COALESCE($10::bigint, last_lag_ms)
			WHERE name = $1`, feed.Name, maxID, etag, int(res.Interval/time.Second), feed.Path,
			len(b.fresh), res.Gaps, res.Missed, fetched, lagMS)
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		p.forget(feed)
		return res, fmt.Errorf("save checkpoint of %s: %w", feed.Name, err)
	}
	p.m.polls.WithLabelValues(feed.Name, "new").Inc()
	p.m.events.WithLabelValues(feed.Name).Add(float64(len(b.fresh)))
	p.m.lastOK.WithLabelValues(feed.Name).Set(float64(fetched.Unix()))
	if res.Duplicates > 0 {
		p.m.dups.WithLabelValues(feed.Name).Add(float64(res.Duplicates))
	}
	for _, f := range b.fresh {
		if !f.at.IsZero() {
			p.m.lag.WithLabelValues(feed.Name).Observe(fetched.Sub(f.at).Seconds())
		}
	}
	if res.Gap {
		p.m.gaps.WithLabelValues(feed.Name).Add(float64(res.Gaps))
		p.m.missed.WithLabelValues(feed.Name).Add(float64(res.Missed))
	}
	return res, nil
}

// state returns the feed's in-memory state, created from its checkpoint.
func (p *Poller) state(feed Feed, cp checkpoint) *feedState {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.states[feed.Name]
	if st == nil {
		st = &feedState{recent: newRecentIDs(cp.lastID)}
		p.states[feed.Name] = st
	}
	return st
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
	p.logPlan()
	for ctx.Err() == nil {
		if err := p.lead(ctx); err != nil && ctx.Err() == nil {
			p.logger.Error("poller", slog.Any("error", err))
		}
		sleep(ctx, 5*time.Second)
	}
}

// logPlan says how much of the public stream the tokens can cover.
func (p *Poller) logPlan() {
	perHour := p.budgetShare * float64(p.gh.Tokens.HourlyLimit())
	// A charged poll brings at most a page of new events; the adaptive
	// cadence aims at pageFill of one, and fills up to three pages when the
	// budget holds it back.
	covers := perHour / 3600 * pageSize * 0.9
	attrs := []any{slog.String("mode", p.mode), slog.Int("tokens", p.gh.Tokens.Size()),
		slog.Float64("poll_budget_per_hour", perHour), slog.Float64("budget_share", p.budgetShare),
		slog.Float64("coverable_events_per_second", covers)}
	switch {
	case p.mode == PollObey:
		p.logger.Warn("polling GitHub's public events at X-Poll-Interval (60 s): a 300-event window covers about 5 s of each minute at GitHub's 50–100 events/s; set LEAKWATCH_GITHUB_POLL_MODE=adaptive", attrs...)
	case covers < 100:
		p.logger.Warn("the GitHub tokens' polling budget covers less than GitHub's public stream (50–100 events/s): add tokens; missed events are recorded as gaps", attrs...)
	default:
		p.logger.Info("GitHub polling plan", attrs...)
	}
}

func (p *Poller) lead(ctx context.Context) error {
	pc, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire lock connection: %w", err)
	}
	// The lock lives with this connection's open transaction, which never
	// goes back to the pool: a transaction-level lock in a transaction held
	// open, because a session-level one would stay on whichever server
	// session a transaction pooler (PgBouncer) ran the statement on.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if err := database.KeepSessionAlive(ctx, conn); err != nil {
		return err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin poller lock transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	var got bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, lockKey(leaderLock)).Scan(&got); err != nil {
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
	clear(p.states)
	p.mu.Unlock()
	p.logger.Info("polling GitHub feeds")
	// The public feed runs on its own loop: its sub-second cadence must not
	// wait on the watched feeds' polls and commits.
	mainCtx, stopMain := context.WithCancel(ctx)
	var mainDone sync.WaitGroup
	mainDone.Go(func() { p.runMain(mainCtx) })
	defer func() { stopMain(); mainDone.Wait() }()
	var feeds []Feed
	var checked time.Time
	for ctx.Err() == nil {
		if time.Since(checked) >= 5*time.Second {
			// Losing the lock's session means another process may lead now.
			if err := conn.Ping(ctx); err != nil {
				return fmt.Errorf("lost poller lock connection: %w", err)
			}
			all, err := p.Feeds(ctx)
			if err != nil {
				return err
			}
			feeds = all[1:]
			checked = time.Now()
		}
		wait, err := p.pollDue(ctx, feeds)
		if err != nil {
			return err
		}
		p.housekeeping(ctx)
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

// cadenceOf returns the pacing rules of a feed.
func (p *Poller) cadenceOf(f Feed) cadence {
	c := cadence{mode: p.mode, min: publicMinPeriod, max: publicMaxPeriod}
	if f.Name != p.feed.Name {
		c.min, c.max = watchedMinPeriod, watchedMaxPeriod
	}
	if p.mode == PollObey {
		c.min, c.max = 0, 0
	}
	if p.minInterval > 0 && (c.max == 0 || p.minInterval < c.max) {
		c.max = p.minInterval
	}
	return c
}

// pollDue polls the feeds whose time has come and returns how long to wait
// before the next one is due. Periods run from each poll's start; the
// polling budget can hold a poll back.
func (p *Poller) pollDue(ctx context.Context, feeds []Feed) (time.Duration, error) {
	wait := 5 * time.Second // picks up new watches
	for _, f := range feeds {
		st, due, err := p.dueIn(ctx, f)
		if err != nil {
			return 0, err
		}
		if due > 0 {
			wait = min(wait, due)
			continue
		}
		started := p.now()
		res, err := p.PollFeed(ctx, f)
		if ctx.Err() != nil {
			return 0, nil
		}
		wait = min(wait, p.scheduleNext(f, st, started, res, err))
	}
	return wait, nil
}

// runMain polls the main feed until ctx ends. Each poll's commit runs
// while the next poll is fetched, so a slow database does not stretch the
// period; a poll is committed only after the one before it, and when that
// one failed it is dropped and the feed starts again from the saved
// checkpoint.
func (p *Poller) runMain(ctx context.Context) {
	f := p.feed
	var pending chan error
	settle := func() bool {
		if pending == nil {
			return true
		}
		err := <-pending
		pending = nil
		if err != nil {
			p.logger.Error("poll failed", slog.String("feed", f.Name), slog.Any("error", err))
			return false
		}
		return true
	}
	defer settle()
	for ctx.Err() == nil {
		st, due, err := p.dueIn(ctx, f)
		if err != nil {
			p.logger.Error("poll public feed", slog.Any("error", err))
			due = time.Second
		}
		if due > 0 {
			sleep(ctx, due)
			continue
		}
		started := p.now()
		b, err := p.fetchFeed(ctx, f)
		if ctx.Err() != nil {
			return
		}
		if !settle() {
			// The poll before failed to commit: this one started from a
			// checkpoint that was never saved.
			p.forget(f)
			p.budget.spend(p.now(), b.res.Requests)
			p.mu.Lock()
			st.next = time.Time{}
			p.mu.Unlock()
			continue
		}
		if err == nil && b.commit {
			pending = make(chan error, 1)
			go func() {
				_, err := p.commitFeed(ctx, b)
				pending <- err
			}()
		}
		p.scheduleNext(f, st, started, b.res, err)
	}
}

// dueIn returns a feed's state and how long until it may be polled (its
// cadence, and the polling budget).
func (p *Poller) dueIn(ctx context.Context, f Feed) (*feedState, time.Duration, error) {
	cp, err := p.cachedCheckpoint(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	st := p.state(f, cp)
	now := p.now()
	p.mu.Lock()
	due := st.next
	p.mu.Unlock()
	if b := p.budget.wait(now); b > 0 && now.Add(b).After(due) {
		due = now.Add(b)
	}
	return st, max(due.Sub(now), 0), nil
}

// scheduleNext books a poll's cost and sets when the feed is due again;
// it returns the time until then.
func (p *Poller) scheduleNext(f Feed, st *feedState, started time.Time, res PollResult, err error) time.Duration {
	p.budget.spend(p.now(), res.Requests)
	var limitedUntil time.Time
	var rl *RateLimitedError
	p.mu.Lock()
	failing := st.failures > 0
	p.mu.Unlock()
	switch {
	case errors.As(err, &rl):
		limitedUntil = rl.Until
		p.logger.Warn("rate limited; feed waits for a token", slog.String("feed", f.Name), slog.Time("until", rl.Until))
	case err != nil && failing:
		// No network fails every poll the same way: say it when it starts
		// and when it ends, not at every retry (the poll metrics count each).
		p.logger.Debug("poll failed again", slog.String("feed", f.Name), slog.Any("error", err))
	case err != nil:
		p.logger.Error("poll failed; retrying with backoff, logged again when it recovers", slog.String("feed", f.Name), slog.Any("error", err))
	case failing:
		p.logger.Info("poll recovered", slog.String("feed", f.Name))
	}
	p.mu.Lock()
	next := p.cadenceOf(f).after(st, started, res, err, limitedUntil)
	st.next = started.Add(next)
	p.mu.Unlock()
	if err == nil {
		p.logger.Debug("polled", slog.String("feed", f.Name), slog.Int("events", res.Events), slog.Bool("not_modified", res.NotModified),
			slog.Int("pages", res.Pages), slog.Int("gaps", res.Gaps), slog.Duration("took", p.now().Sub(started)), slog.Duration("next", next))
	}
	return max(st.next.Sub(p.now()), time.Millisecond)
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
