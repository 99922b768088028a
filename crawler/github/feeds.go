package github

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/audit"
)

// Feed is one events timeline: its checkpoint name and API path.
type Feed struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// Watch kinds: the extra feeds an organisation can watch.
const (
	WatchOrg  = "org"  // /orgs/{org}/events
	WatchUser = "user" // /users/{user}/events/public
	WatchRepo = "repo" // /repos/{owner}/{repo}/events
)

var (
	namePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`) })
	repoPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$`) })
)

// ErrInvalidWatch is returned for an unknown kind or a malformed target.
var ErrInvalidWatch = errors.New("invalid watch")

// ErrWatchNotFound is returned when a watch does not exist in the
// organisation.
var ErrWatchNotFound = errors.New("watch not found")

// FeedFor returns the feed of a watch.
func FeedFor(kind, target string) (Feed, error) {
	if strings.Contains(target, "..") || strings.HasPrefix(target, ".") || strings.Contains(target, "/.") {
		// GitHub names never look like this; in a URL path they would be
		// resolved as "..", landing on another feed.
		return Feed{}, fmt.Errorf("%w: %s %q is not a GitHub name", ErrInvalidWatch, kind, target)
	}
	switch kind {
	case WatchOrg:
		if namePattern().MatchString(target) {
			return Feed{Name: "github:org:" + target, Path: "orgs/" + target + "/events"}, nil
		}
	case WatchUser:
		if namePattern().MatchString(target) {
			return Feed{Name: "github:user:" + target, Path: "users/" + target + "/events/public"}, nil
		}
	case WatchRepo:
		if repoPattern().MatchString(target) {
			return Feed{Name: "github:repo:" + target, Path: "repos/" + target + "/events"}, nil
		}
	default:
		return Feed{}, fmt.Errorf("%w: kind %q (want org, user or repo)", ErrInvalidWatch, kind)
	}
	return Feed{}, fmt.Errorf("%w: %s %q is not a GitHub name", ErrInvalidWatch, kind, target)
}

// Watch is an extra feed an organisation watches.
type Watch struct {
	ID        int64     `json:"id"`
	OrgID     int64     `json:"org_id"`
	Kind      string    `json:"kind"`
	Target    string    `json:"target"`
	Feed      string    `json:"feed"`
	CreatedAt time.Time `json:"created_at"`
}

// Feeds is the store of watched feeds and feed health.
type Feeds struct {
	pool *pgxpool.Pool
}

// NewFeeds returns the store.
func NewFeeds(pool *pgxpool.Pool) *Feeds { return &Feeds{pool: pool} }

// AddWatch makes the organisation watch a GitHub organisation, user or
// repository; the leading poller picks it up within seconds. Adding an
// existing watch returns it. It is audited (github_watch.create) in its
// transaction, as made by a.
func (s *Feeds) AddWatch(ctx context.Context, a audit.Actor, orgID int64, kind, target string) (Watch, error) {
	feed, err := FeedFor(kind, target)
	if err != nil {
		return Watch{}, err
	}
	w := Watch{OrgID: orgID, Kind: kind, Target: target, Feed: feed.Name}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO github_watches (org_id, kind, target) VALUES ($1, $2, $3)
			ON CONFLICT (org_id, kind, target) DO UPDATE SET target = EXCLUDED.target
			RETURNING id, created_at`, orgID, kind, target).Scan(&w.ID, &w.CreatedAt)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "github_watch.create", "github_watch", w.ID, map[string]any{"kind": kind, "target": target}))
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23503" {
			return Watch{}, fmt.Errorf("add watch for org %d: %w", orgID, ErrWatchNotFound)
		}
		return Watch{}, fmt.Errorf("add watch for org %d: %w", orgID, err)
	}
	return w, nil
}

// RemoveWatch stops the organisation's watch id, audited
// (github_watch.delete) in its transaction.
func (s *Feeds) RemoveWatch(ctx context.Context, a audit.Actor, orgID, id int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM github_watches WHERE org_id = $1 AND id = $2`, orgID, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrWatchNotFound
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "github_watch.delete", "github_watch", id, nil))
	})
	if errors.Is(err, ErrWatchNotFound) {
		return ErrWatchNotFound
	}
	if err != nil {
		return fmt.Errorf("remove watch %d of org %d: %w", id, orgID, err)
	}
	return nil
}

// Watches lists an organisation's watches.
func (s *Feeds) Watches(ctx context.Context, orgID int64) ([]Watch, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, org_id, kind, target, created_at FROM github_watches WHERE org_id = $1 ORDER BY id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list watches of org %d: %w", orgID, err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Watch, error) {
		var w Watch
		err := r.Scan(&w.ID, &w.OrgID, &w.Kind, &w.Target, &w.CreatedAt)
		if f, ferr := FeedFor(w.Kind, w.Target); ferr == nil {
			w.Feed = f.Name
		}
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("list watches of org %d: %w", orgID, err)
	}
	return ws, nil
}

// watchedFeeds returns every distinct feed any organisation watches.
func watchedFeeds(ctx context.Context, pool *pgxpool.Pool) ([]Feed, error) {
	rows, err := pool.Query(ctx, `SELECT DISTINCT kind, target FROM github_watches ORDER BY kind, target`)
	if err != nil {
		return nil, fmt.Errorf("list watched feeds: %w", err)
	}
	defer rows.Close()
	var feeds []Feed
	for rows.Next() {
		var kind, target string
		if err := rows.Scan(&kind, &target); err != nil {
			return nil, fmt.Errorf("list watched feeds: %w", err)
		}
		if f, err := FeedFor(kind, target); err == nil {
			feeds = append(feeds, f)
		}
	}
	return feeds, rows.Err()
}

// Gap is a recorded stretch of missed events.
type Gap struct {
	ID              int64     `json:"id"`
	Feed            string    `json:"feed"`
	DetectedAt      time.Time `json:"detected_at"`
	AfterEventID    int64     `json:"after_event_id"`
	BeforeEventID   int64     `json:"before_event_id"`
	EstimatedMissed int64     `json:"estimated_missed"`
	// State is how the gap ended: "open" while GH Archive is read for it,
	// "backfilled" or "unrecoverable" (Note says why). ArchiveFound counts
	// the archived events inside the gap, ArchiveProcessed those that went
	// through the pipeline.
	State            string     `json:"state"`
	ArchiveFound     int64      `json:"archive_found"`
	ArchiveProcessed int64      `json:"archive_processed"`
	ResolvedAt       *time.Time `json:"resolved_at"`
	Note             string     `json:"note,omitempty"`
}

// FeedHealth is how one feed is doing.
type FeedHealth struct {
	Feed            string     `json:"feed"`
	Path            string     `json:"path"`
	LastSuccessAt   *time.Time `json:"last_success_at"`
	LastError       string     `json:"last_error,omitempty"`
	LastErrorAt     *time.Time `json:"last_error_at,omitempty"`
	LastEventID     int64      `json:"last_event_id"`
	PollIntervalS   int        `json:"poll_interval_s"`
	LagSeconds      *float64   `json:"lag_seconds"` // newest event's created_at → fetched, last poll with events
	LagP50Seconds   *float64   `json:"lag_p50_seconds"`
	EventsPerMinute float64    `json:"events_per_minute"` // over the last 10 minutes
	EventsTotal     int64      `json:"events_total"`
	Gaps            int64      `json:"gaps"`
	MissedEstimate  int64      `json:"missed_estimate"`
	RecentGaps      []Gap      `json:"recent_gaps"`
	// Gap outcomes (backfill from GH Archive).
	GapsOpen          int64 `json:"gaps_open"`
	GapsBackfilled    int64 `json:"gaps_backfilled"`
	GapsUnrecoverable int64 `json:"gaps_unrecoverable"`
	// LiveCoverageRatio is events taken live over GH Archive's count, for
	// the latest hour read (public feed only; null before one is read);
	// Coverage lists the last 24 hours read, newest first.
	LiveCoverageRatio *float64       `json:"live_coverage_ratio"`
	Coverage          []HourCoverage `json:"coverage,omitempty"`
}

// Health is the crawler's state for the dashboard.
type Health struct {
	Feeds  []FeedHealth  `json:"feeds"`
	Tokens []TokenBudget `json:"tokens"`
	// PushCoverage is, for each of the last 24 hours of push events, the
	// pushes fetched out of those seen: below 1 when the tokens' budget
	// could not cover every push (the other event types are scanned from
	// the stream whatever the budget).
	PushCoverage []PushHour `json:"push_coverage"`
}

// Health reports on the public feed and the feeds orgID watches (every
// feed when orgID is 0), with the token budgets.
func (s *Feeds) Health(ctx context.Context, orgID int64) (Health, error) {
	var h Health
	names := []string{FeedPublic}
	if orgID != 0 {
		ws, err := s.Watches(ctx, orgID)
		if err != nil {
			return h, err
		}
		for _, w := range ws {
			names = append(names, w.Feed)
		}
	}
	rows, err := s.pool.Query(ctx, `
		SELECT f.name, f.path, f.last_success_at, f.last_error, f.last_error_at, f.last_event_id, f.poll_interval_s,
			f.last_lag_ms / 1000.0, f.events_total, f.gaps_total, f.missed_total,
			COALESCE((SELECT sum(p.events) FROM crawl_feed_polls p WHERE p.feed = f.name AND p.polled_at > now() - interval '10 minutes'), 0) / 10.0,
			(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY p.lag_ms) / 1000.0 FROM crawl_feed_polls p
				WHERE p.feed = f.name AND p.polled_at > now() - interval '1 hour')
		FROM crawl_feeds f
		WHERE $1::bigint = 0 OR f.name = ANY($2)
		ORDER BY f.name`, orgID, names)
	if err != nil {
		return h, fmt.Errorf("read feed health: %w", err)
	}
	h.Feeds, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (FeedHealth, error) {
		var f FeedHealth
		var lag *float64
		err := r.Scan(&f.Feed, &f.Path, &f.LastSuccessAt, &f.LastError, &f.LastErrorAt, &f.LastEventID, &f.PollIntervalS,
			&lag, &f.EventsTotal, &f.Gaps, &f.MissedEstimate, &f.EventsPerMinute, &f.LagP50Seconds)
		f.LagSeconds = lag
		return f, err
	})
	if err != nil {
		return h, fmt.Errorf("read feed health: %w", err)
	}
	for i := range h.Feeds {
		gaps, err := s.gaps(ctx, h.Feeds[i].Feed, 10)
		if err != nil {
			return h, err
		}
		h.Feeds[i].RecentGaps = gaps
		if err := s.pool.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE state = 'open'), count(*) FILTER (WHERE state = 'backfilled'),
				count(*) FILTER (WHERE state = 'unrecoverable')
			FROM crawl_gaps WHERE feed = $1`, h.Feeds[i].Feed).Scan(&h.Feeds[i].GapsOpen, &h.Feeds[i].GapsBackfilled, &h.Feeds[i].GapsUnrecoverable); err != nil {
			return h, fmt.Errorf("count gaps of %s: %w", h.Feeds[i].Feed, err)
		}
		if h.Feeds[i].Feed == FeedPublic {
			cov, err := Coverage(ctx, s.pool, FeedPublic, 24)
			if err != nil {
				return h, err
			}
			h.Feeds[i].Coverage = cov
			if len(cov) > 0 {
				h.Feeds[i].LiveCoverageRatio = cov[0].Ratio
			}
		}
	}
	h.Tokens, err = s.budgets(ctx)
	if err != nil {
		return h, err
	}
	h.PushCoverage, err = pushHours(ctx, s.pool, 24)
	return h, err
}

// Gaps returns a feed's most recent gaps.
func (s *Feeds) gaps(ctx context.Context, feed string, limit int) ([]Gap, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, feed, detected_at, after_event_id, before_event_id, estimated_missed,
			state, archive_found, archive_processed, resolved_at, note
		FROM crawl_gaps WHERE feed = $1 ORDER BY detected_at DESC, id DESC LIMIT $2`, feed, limit)
	if err != nil {
		return nil, fmt.Errorf("read gaps of %s: %w", feed, err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Gap, error) {
		var g Gap
		err := r.Scan(&g.ID, &g.Feed, &g.DetectedAt, &g.AfterEventID, &g.BeforeEventID, &g.EstimatedMissed,
			&g.State, &g.ArchiveFound, &g.ArchiveProcessed, &g.ResolvedAt, &g.Note)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("read gaps of %s: %w", feed, err)
	}
	if gs == nil {
		gs = []Gap{}
	}
	return gs, nil
}

func (s *Feeds) budgets(ctx context.Context) ([]TokenBudget, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT token_id, limit_per_hour, remaining, COALESCE(reset_at, 'epoch'), COALESCE(parked_until, 'epoch'), park_reason, requests
		FROM github_token_budgets ORDER BY token_id`)
	if err != nil {
		return nil, fmt.Errorf("read token budgets: %w", err)
	}
	bs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TokenBudget, error) {
		var b TokenBudget
		err := r.Scan(&b.ID, &b.Limit, &b.Remaining, &b.Reset, &b.ParkedUntil, &b.ParkReason, &b.Requests)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("read token budgets: %w", err)
	}
	if bs == nil {
		bs = []TokenBudget{}
	}
	return bs, nil
}

// SaveBudgets stores the pool's budgets for processes that do not poll
// (the web role's dashboard).
func SaveBudgets(ctx context.Context, pool *pgxpool.Pool, budgets []TokenBudget) error {
	b := &pgx.Batch{}
	for _, t := range budgets {
		b.Queue(`
			INSERT INTO github_token_budgets (token_id, limit_per_hour, remaining, reset_at, parked_until, park_reason, requests, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, now())
			ON CONFLICT (token_id) DO UPDATE SET limit_per_hour = EXCLUDED.limit_per_hour, remaining = EXCLUDED.remaining,
				reset_at = EXCLUDED.reset_at, parked_until = EXCLUDED.parked_until, park_reason = EXCLUDED.park_reason,
				requests = EXCLUDED.requests, updated_at = now()`,
			t.ID, t.Limit, t.Remaining, nullTime(t.Reset), nullTime(t.ParkedUntil), t.ParkReason, t.Requests)
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("save token budgets: %w", err)
	}
	return nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
