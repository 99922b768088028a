package paste

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/internal/platform/database"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// Poller lists one source and queues a fetch job per new paste.
type Poller struct {
	src    Source
	store  *Store
	pool   *pgxpool.Pool
	river  *jobs.Client
	logger *slog.Logger
}

// PollerConfig configures a Poller.
type PollerConfig struct {
	Source Source
	Pool   *pgxpool.Pool
	River  *jobs.Client
	Logger *slog.Logger
}

// NewPoller returns a Poller.
func NewPoller(cfg PollerConfig) *Poller {
	return &Poller{src: cfg.Source, store: NewStore(cfg.Pool), pool: cfg.Pool, river: cfg.River,
		logger: cfg.Logger.With(slog.String("paste_source", cfg.Source.Name()))}
}

// PollResult says what one poll did.
type PollResult struct {
	Listed    int // items in the listing
	New       int // not seen before; a fetch job each
	Malformed int // listing entries skipped
	// Gap says the listing held only new items, so pastes published
	// between this poll and the last were probably missed; GapEstimate is
	// how many, from the listing's own rate (at least 1).
	Gap         bool
	GapEstimate int
}

// PollOnce lists the source once. New pastes are recorded and their fetch
// jobs queued in the transaction that advances the checkpoint. A failed
// listing is recorded as such (and, for a refusal, marks the source
// unauthorised) and returned.
func (p *Poller) PollOnce(ctx context.Context) (PollResult, error) {
	name := p.src.Name()
	cp, err := p.store.Register(ctx, p.src)
	if err != nil {
		return PollResult{}, err
	}
	l, err := p.src.List(ctx, cp)
	if err != nil {
		if ferr := p.store.pollFailed(ctx, name, err); ferr != nil {
			p.logger.Error("record poll failure", slog.Any("error", ferr))
		}
		return PollResult{}, fmt.Errorf("list %s: %w", name, err)
	}
	res := PollResult{Listed: len(l.Items), Malformed: l.Malformed}
	var newest Item
	var newestDate time.Time
	for _, it := range l.Items {
		if it.Date.After(newestDate) {
			newest, newestDate = it, it.Date
		}
	}
	if newest.ID == "" && len(l.Items) > 0 {
		newest = l.Items[0]
	}
	first := cp.LastKey == "" && cp.LastPasteAt.IsZero()
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		fresh, err := insertNewTx(ctx, tx, name, l.Items)
		if err != nil {
			return err
		}
		res.New = len(fresh)
		if !first && !l.Exhausted && len(l.Items) > 0 && len(fresh) == len(l.Items) {
			res.Gap, res.GapEstimate = gapEstimate(l.Items, cp.LastPasteAt)
		}
		if len(fresh) > 0 {
			params := make([]river.InsertManyParams, len(fresh))
			for i, it := range fresh {
				params[i] = river.InsertManyParams{Args: FetchArgs{Source: name, Item: it}}
			}
			if _, err := p.river.InsertManyTx(ctx, tx, params); err != nil {
				return fmt.Errorf("queue fetches: %w", err)
			}
		}
		if err := pruneTx(ctx, tx, name); err != nil {
			return err
		}
		return pollSucceededTx(ctx, tx, name, res, newest, newestDate)
	})
	if err != nil {
		return res, err
	}
	if res.Gap {
		p.logger.Warn("pastes were probably missed between polls", slog.Int("listed", res.Listed), slog.Int("estimated_missed", res.GapEstimate))
	}
	if res.Malformed > 0 {
		p.logger.Warn("skipped malformed listing entries", slog.Int("malformed", res.Malformed))
	}
	return res, nil
}

// gapEstimate decides whether an all-new listing means a gap and estimates
// how many pastes fell into it: the listing's rate over its own time span,
// times the time between the last paste seen and the oldest listed. A
// listing that reaches back to the last paste seen is no gap.
func gapEstimate(items []Item, lastSeen time.Time) (bool, int) {
	var oldest, newest time.Time
	for _, it := range items {
		if it.Date.IsZero() {
			return true, 1 // no dates: a gap of unknown size
		}
		if oldest.IsZero() || it.Date.Before(oldest) {
			oldest = it.Date
		}
		if it.Date.After(newest) {
			newest = it.Date
		}
	}
	if lastSeen.IsZero() {
		return true, 1
	}
	if !oldest.After(lastSeen) {
		return false, 0
	}
	span := newest.Sub(oldest)
	if len(items) < 2 || span <= 0 {
		return true, 1
	}
	// At the listing's pace, a window of w holds rate*w intervals, so
	// rate*w - 1 pastes strictly between the last seen and the oldest listed.
	perSecond := float64(len(items)-1) / span.Seconds()
	est := math.Round(perSecond*oldest.Sub(lastSeen).Seconds()) - 1
	return true, int(max(1, min(est, 1e6)))
}

// Run polls the source until ctx ends, while this process holds the
// source's advisory lock; other processes wait to take over.
func (p *Poller) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := p.lead(ctx); err != nil && ctx.Err() == nil {
			p.logger.Error("paste poller", slog.Any("error", err))
		}
		sleep(ctx, 5*time.Second)
	}
}

func (p *Poller) lead(ctx context.Context) error {
	conn, ok, err := tryLock(ctx, p.pool, p.src.Name())
	if err != nil || !ok {
		return err
	}
	defer unlock(context.WithoutCancel(ctx), conn, p.src.Name())
	p.logger.Info("polling paste source")
	failures := 0
	for ctx.Err() == nil {
		// Losing the lock's session means another process may lead now.
		if err := conn.Ping(ctx); err != nil {
			return fmt.Errorf("lost source lock connection: %w", err)
		}
		wait := p.src.Interval()
		res, err := p.PollOnce(ctx)
		until, limited := rateLimitedUntil(err)
		switch {
		case err == nil:
			failures = 0
			p.logger.Debug("polled", slog.Int("listed", res.Listed), slog.Int("new", res.New), slog.Bool("gap", res.Gap))
		case limited:
			p.logger.Warn("rate limited; waiting", slog.Time("until", until))
			wait = max(wait, time.Until(until))
		default:
			failures++
			p.logger.Error("poll failed", slog.Any("error", err), slog.Int("consecutive_failures", failures))
			// Back off up to ten minutes, never faster than the interval.
			wait = max(wait, min(10*time.Minute, wait<<min(failures, 6)))
		}
		sleep(ctx, wait)
	}
	return nil
}

// tryLock takes the source's advisory lock on a connection of its own, as
// a transaction-level lock in a transaction held open: the connection never
// goes back to the pool, and a transaction pooler (PgBouncer) keeps the
// transaction, and so the lock, on one server session, where a
// session-level lock would stay behind on whichever session ran it.
// Closing the connection ends the transaction and releases the lock.
func tryLock(ctx context.Context, pool *pgxpool.Pool, source string) (*pgx.Conn, bool, error) {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("acquire lock connection: %w", err)
	}
	conn := pc.Hijack()
	if err := database.KeepSessionAlive(ctx, conn); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, false, err
	}
	if _, err := conn.Exec(ctx, `BEGIN`); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, false, fmt.Errorf("begin source lock transaction: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, lockKey(source)).Scan(&got); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, false, fmt.Errorf("take source lock: %w", err)
	}
	if !got {
		conn.Close(context.WithoutCancel(ctx))
		return nil, false, nil
	}
	return conn, true, nil
}

// unlock ends the lock's transaction, releasing it, and closes its
// connection. Closing alone would release it too, but only once the server
// notices.
func unlock(ctx context.Context, conn *pgx.Conn, _ string) {
	conn.Exec(ctx, `ROLLBACK`) //nolint:errcheck
	conn.Close(ctx)
}

func lockKey(source string) int64 {
	h := fnv.New64a()
	h.Write([]byte("leakwatch-paste:" + source))
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
