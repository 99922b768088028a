// Package github crawls GitHub's public events stream.
//
// A Poller per feed reads the timeline with conditional requests (ETag,
// If-None-Match: a 304 costs no rate limit) at the pace GitHub asks for
// (X-Poll-Interval), keeps its checkpoint in PostgreSQL, and hands new events
// to River as jobs in the same transaction that advances the checkpoint, so a
// crash loses nothing and repeats nothing visible. Exactly one process polls a
// feed: the holder of the feed's advisory lock.
package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/internal/jobs"
)

// FeedPublic is the name of the global public events feed.
const FeedPublic = "github:events"

// maxPages is how deep a timeline goes: 300 events in pages of 100.
const maxPages = 3

// NewClient returns a go-github client for the API at baseURL that
// authenticates with tokens in turn (none: unauthenticated, 60 requests/hour).
func NewClient(baseURL string, tokens []string, transport http.RoundTripper) (*gh.Client, error) {
	if transport == nil {
		transport = http.DefaultTransport
	}
	if len(tokens) > 0 {
		transport = &tokenTransport{tokens: tokens, next: transport}
	}
	c := gh.NewClient(&http.Client{Transport: transport, Timeout: 30 * time.Second})
	if !strings.HasSuffix(baseURL, "/") {
		baseURL += "/"
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("GitHub API URL %q is not an absolute URL", baseURL)
	}
	c.BaseURL = u
	return c, nil
}

// tokenTransport spreads requests over the configured tokens.
type tokenTransport struct {
	tokens []string
	n      atomic.Uint64
	next   http.RoundTripper
}

func (t *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	i := t.n.Add(1) % uint64(len(t.tokens))
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.tokens[i])
	return t.next.RoundTrip(r)
}

// Poller polls one feed.
type Poller struct {
	gh     *gh.Client
	pool   *pgxpool.Pool
	river  *jobs.Client
	feed   string
	path   string
	logger *slog.Logger
	// MinInterval bounds how often the feed is polled, whatever GitHub says
	// (tests poll fast; production keeps GitHub's pace).
	minInterval time.Duration
}

// PollerConfig configures a Poller.
type PollerConfig struct {
	Client      *gh.Client
	Pool        *pgxpool.Pool
	River       *jobs.Client
	Feed        string // checkpoint name; FeedPublic for /events
	Path        string // API path relative to the base URL, e.g. "events"
	MinInterval time.Duration
	Logger      *slog.Logger
}

// NewPoller returns a Poller for one feed.
func NewPoller(cfg PollerConfig) *Poller {
	if cfg.Feed == "" {
		cfg.Feed = FeedPublic
	}
	if cfg.Path == "" {
		cfg.Path = "events"
	}
	return &Poller{gh: cfg.Client, pool: cfg.Pool, river: cfg.River, feed: cfg.Feed, path: cfg.Path, logger: cfg.Logger.With(slog.String("feed", cfg.Feed)), minInterval: cfg.MinInterval}
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
	Interval    time.Duration // how long to wait before the next poll
}

// PollOnce fetches the timeline once and queues the new events.
func (p *Poller) PollOnce(ctx context.Context) (PollResult, error) {
	cp, err := p.checkpoint(ctx)
	if err != nil {
		return PollResult{}, err
	}
	res := PollResult{Interval: cp.interval}
	var (
		fresh   []json.RawMessage
		maxID   = cp.lastID
		etag    string
		reached = cp.lastID == 0 // a first poll takes what is there
		oldest  int64
	)
	for page := 1; page <= maxPages; page++ {
		req, err := p.gh.NewRequest(http.MethodGet, fmt.Sprintf("%s?per_page=100&page=%d", p.path, page), nil)
		if err != nil {
			return res, fmt.Errorf("build request: %w", err)
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
			return res, p.saveNotModified(ctx, res.Interval)
		}
		if err != nil {
			p.saveError(ctx, err)
			return res, fmt.Errorf("GET %s page %d: %w", p.path, page, err)
		}
		if page == 1 {
			etag = resp.Header.Get("ETag")
		}
		for _, raw := range raws {
			id, err := eventID(raw)
			if err != nil {
				p.logger.Warn("skipping malformed event in timeline", slog.Any("error", err))
				continue
			}
			if oldest == 0 || id < oldest {
				oldest = id
			}
			if id <= cp.lastID {
				reached = true
				continue
			}
			fresh = append(fresh, raw)
			if id > maxID {
				maxID = id
			}
		}
		if reached || resp.NextPage == 0 {
			break
		}
	}
	if !reached && len(fresh) > 0 {
		res.Gap = true
		p.logger.Warn("events were missed between polls", slog.Int64("last_seen_id", cp.lastID), slog.Int64("oldest_fetched_id", oldest))
	}
	res.Events = len(fresh)
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if len(fresh) > 0 {
			var params []river.InsertManyParams
			for i := 0; i < len(fresh); i += 100 {
				batch := fresh[i:min(i+100, len(fresh))]
				params = append(params, river.InsertManyParams{Args: EventsArgs{Feed: p.feed, Events: batch}})
			}
			if _, err := p.river.InsertManyTx(ctx, tx, params); err != nil {
				return fmt.Errorf("queue events: %w", err)
			}
		}
		_, err := tx.Exec(ctx, `
			UPDATE crawl_feeds SET last_event_id = $2, etag = $3, poll_interval_s = $4::int,
				next_poll_at = now() + make_interval(secs => $4::int), last_success_at = now(),
				last_error = '', updated_at = now()
			WHERE name = $1`, p.feed, maxID, etag, int(res.Interval/time.Second))
		return err
	})
	if err != nil {
		return res, fmt.Errorf("save checkpoint of %s: %w", p.feed, err)
	}
	return res, nil
}

func (p *Poller) checkpoint(ctx context.Context) (checkpoint, error) {
	var cp checkpoint
	var secs int
	err := p.pool.QueryRow(ctx, `
		INSERT INTO crawl_feeds (name) VALUES ($1)
		ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
		RETURNING last_event_id, etag, poll_interval_s, next_poll_at`, p.feed).Scan(&cp.lastID, &cp.etag, &secs, &cp.next)
	if err != nil {
		return cp, fmt.Errorf("read checkpoint of %s: %w", p.feed, err)
	}
	cp.interval = time.Duration(secs) * time.Second
	return cp, nil
}

func (p *Poller) saveNotModified(ctx context.Context, interval time.Duration) error {
	_, err := p.pool.Exec(ctx, `
		UPDATE crawl_feeds SET poll_interval_s = $2::int, next_poll_at = now() + make_interval(secs => $2::int),
			last_success_at = now(), last_error = '', updated_at = now()
		WHERE name = $1`, p.feed, int(interval/time.Second))
	if err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", p.feed, err)
	}
	return nil
}

func (p *Poller) saveError(ctx context.Context, cause error) {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	if _, err := p.pool.Exec(ctx, `UPDATE crawl_feeds SET last_error = $2, last_error_at = now(), updated_at = now() WHERE name = $1`, p.feed, msg); err != nil {
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

func eventID(raw json.RawMessage) (int64, error) {
	var head struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return 0, fmt.Errorf("decode event id: %w", err)
	}
	id, err := strconv.ParseInt(head.ID, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("event id %q is not a number", head.ID)
	}
	return id, nil
}

// Run polls the feed until ctx ends, while this process holds the feed's
// lock; other processes wait to take over.
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
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(p.feed)).Scan(&got); err != nil {
		return fmt.Errorf("take feed lock: %w", err)
	}
	if !got {
		return nil
	}
	p.logger.Info("polling feed")
	for ctx.Err() == nil {
		cp, err := p.checkpoint(ctx)
		if err != nil {
			return err
		}
		wait := time.Until(cp.next)
		if p.minInterval > 0 && wait > p.minInterval {
			wait = p.minInterval
		}
		sleep(ctx, wait)
		if ctx.Err() != nil {
			return nil
		}
		// Losing the lock's session means another process may lead now.
		if err := conn.Ping(ctx); err != nil {
			return fmt.Errorf("lost feed lock connection: %w", err)
		}
		res, err := p.PollOnce(ctx)
		if err != nil {
			var rle *gh.RateLimitError
			var ale *gh.AbuseRateLimitError
			switch {
			case errors.As(err, &rle):
				p.logger.Warn("rate limited; waiting for reset", slog.Time("reset", rle.Rate.Reset.Time))
				sleep(ctx, time.Until(rle.Rate.Reset.Time))
			case errors.As(err, &ale) && ale.RetryAfter != nil:
				p.logger.Warn("secondary rate limit", slog.Duration("retry_after", *ale.RetryAfter))
				sleep(ctx, *ale.RetryAfter)
			default:
				p.logger.Error("poll failed", slog.Any("error", err))
				sleep(ctx, time.Minute)
			}
			continue
		}
		p.logger.Debug("polled", slog.Int("events", res.Events), slog.Bool("not_modified", res.NotModified), slog.Bool("gap", res.Gap))
	}
	return nil
}

func lockKey(feed string) int64 {
	h := fnv.New64a()
	h.Write([]byte("leakwatch-feed:" + feed))
	return int64(h.Sum64())
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
