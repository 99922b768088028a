package github

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// Defaults of BackfillConfig.
const (
	ArchiveURLDefault          = "https://data.gharchive.org"
	ArchivePublishDelayDefault = time.Hour
	ArchiveGiveUpAfterDefault  = 6 * time.Hour
	ArchiveRetryEveryDefault   = 10 * time.Minute
	ArchiveRunBudgetDefault    = 30 * time.Second
	ArchiveChunkLinesDefault   = 20000
	ArchiveMaxLineDefault      = 8 << 20
	ArchiveMaxHoursDefault     = 24
	// archiveKeep is how long hour rows and live counts are kept.
	archiveKeep = 30 * 24 * time.Hour
	// coverageHorizon is how far back coverage reads hours it has not read
	// (turning coverage on does not fetch a month of archive).
	coverageHorizon = 48 * time.Hour
)

// BackfillConfig configures a Backfill.
type BackfillConfig struct {
	// BaseURL of GH Archive (ArchiveURLDefault); files are BaseURL/YYYY-MM-DD-H.json.gz.
	BaseURL string
	// HTTP fetches the files; the caller chooses it (an SSRF-guarded client
	// in production, a plain one to a loopback fake in tests).
	HTTP   *http.Client
	Pool   *pgxpool.Pool
	Events *EventsWorker // what handles live events handles archived ones
	// PublishDelay is how long after an hour ends its file is first asked
	// for; GiveUpAfter (from the hour's end) is when a file still missing
	// makes its gaps unrecoverable; RetryEvery paces the asking in between.
	PublishDelay, GiveUpAfter, RetryEvery time.Duration
	// Coverage reads every finished hour the poller was live in once, to
	// compare live counts with the archive's (costly: see README).
	Coverage bool
	// RunBudget bounds one job run (it then saves its line offset and runs
	// again, so River's rescue window can stay short); ChunkLines is how
	// many lines are read between saved offsets.
	RunBudget  time.Duration
	ChunkLines int
	// MaxLineBytes bounds one line (longer lines are counted skips);
	// MaxHours bounds how many hours a gap's walk back reads.
	MaxLineBytes int
	MaxHours     int
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	Now          func() time.Time
}

// Backfill recovers the events of recorded gaps from GH Archive's hourly
// files and measures live coverage against them. All its work is River
// jobs whose arguments name an hour, never an event; progress (line
// offsets, counts) is saved in PostgreSQL in chunks, so a restart resumes.
type Backfill struct {
	cfg BackfillConfig
	m   backfillMetrics
}

type backfillMetrics struct {
	lines    *prometheus.CounterVec
	gapEv    *prometheus.CounterVec
	hours    *prometheus.CounterVec
	resolved *prometheus.CounterVec
	coverage *prometheus.GaugeVec
}

// NewBackfill returns a Backfill.
func NewBackfill(cfg BackfillConfig) *Backfill {
	if cfg.BaseURL == "" {
		cfg.BaseURL = ArchiveURLDefault
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTP == nil {
		cfg.HTTP = http.DefaultClient
	}
	if cfg.PublishDelay < 0 {
		cfg.PublishDelay = 0
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = ArchiveGiveUpAfterDefault
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = ArchiveRetryEveryDefault
	}
	if cfg.RunBudget <= 0 {
		cfg.RunBudget = ArchiveRunBudgetDefault
	}
	if cfg.ChunkLines <= 0 {
		cfg.ChunkLines = ArchiveChunkLinesDefault
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = ArchiveMaxLineDefault
	}
	if cfg.MaxHours <= 0 {
		cfg.MaxHours = ArchiveMaxHoursDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &Backfill{cfg: cfg, m: backfillMetrics{
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "archive_lines_total",
			Help: "GH Archive lines read, by outcome (event, skipped: malformed or oversized)."}, []string{"outcome"}),
		gapEv: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "archive_gap_events_total",
			Help: "Archived events inside recorded gaps, by outcome (found, processed)."}, []string{"outcome"}),
		hours: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "archive_hours_total",
			Help: "GH Archive hour files finished, by outcome (read, missing)."}, []string{"outcome"}),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "leakwatch", Subsystem: "github", Name: "gaps_resolved_total",
			Help: "Recorded gaps that ended, by feed and state (backfilled, unrecoverable)."}, []string{"feed", "state"}),
		coverage: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "leakwatch", Subsystem: "github", Name: "live_coverage_ratio",
			Help: "Events seen live over the events GH Archive holds, for the latest hour read."}, []string{"feed"}),
	}}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(b.m.lines, b.m.gapEv, b.m.hours, b.m.resolved, b.m.coverage)
	}
	return b
}

// ArchiveHourArgs asks for one GH Archive hour to be read for the gaps and
// coverage that need it. It holds the hour only; what to do and how far it
// got are rows in gharchive_hours and crawl_gap_hours.
type ArchiveHourArgs struct {
	Hour time.Time `json:"hour" river:"unique"`
}

// Kind implements river.JobArgs.
func (ArchiveHourArgs) Kind() string { return "github_archive_hour" }

// activeStates make an hour's job unique while it waits or runs, but let a
// new one be queued after it completed (a later gap can need the hour again).
var activeStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}

// InsertOpts puts hour reads on the crawl queue, behind fresh pushes.
func (ArchiveHourArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueCrawl, Priority: 3, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: activeStates}}
}

// ArchivePlanArgs is the periodic job that starts backfills of new gaps and
// coverage reads of finished hours.
type ArchivePlanArgs struct{}

// Kind implements river.JobArgs.
func (ArchivePlanArgs) Kind() string { return "github_archive_plan" }

// InsertOpts puts the planner on the crawl queue.
func (ArchivePlanArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueCrawl, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: activeStates}}
}

// ArchiveHourWorker reads archive hours.
type ArchiveHourWorker struct {
	river.WorkerDefaults[ArchiveHourArgs]
	b *Backfill
}

// Work implements river.Worker.
func (w *ArchiveHourWorker) Work(ctx context.Context, job *river.Job[ArchiveHourArgs]) error {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("archive hour: %w", err)
	}
	return w.b.ReadHour(ctx, client, job.Args.Hour)
}

// Timeout is the longest any job may take (jobs.MaxJobTimeout), so that a
// run of a crashed process is rescued within the recovery bound. A run
// resumes by decompressing the file up to its saved offset (gzip cannot
// seek) and stops 10 s before the deadline, so an hour of up to about 5 GB
// of JSON (a real GH Archive hour is 1–1.5 GB) is read in one-minute runs.
func (w *ArchiveHourWorker) Timeout(*river.Job[ArchiveHourArgs]) time.Duration {
	return jobs.MaxJobTimeout
}

// ArchivePlanWorker runs the planner.
type ArchivePlanWorker struct {
	river.WorkerDefaults[ArchivePlanArgs]
	b *Backfill
}

// Work implements river.Worker.
func (w *ArchivePlanWorker) Work(ctx context.Context, _ *river.Job[ArchivePlanArgs]) error {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("archive plan: %w", err)
	}
	return w.b.Plan(ctx, client)
}

// AddBackfillWorkers registers the backfill workers.
func AddBackfillWorkers(ws *river.Workers, b *Backfill) {
	river.AddWorker(ws, &ArchiveHourWorker{b: b})
	river.AddWorker(ws, &ArchivePlanWorker{b: b})
}

// PeriodicJobs is the planner, every minute.
func (b *Backfill) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Minute),
		func() (river.JobArgs, *river.InsertOpts) { return ArchivePlanArgs{}, nil },
		&river.PeriodicJobOpts{ID: "github_archive_plan", RunOnStart: true})}
}

// Plan starts work: gaps of feeds GH Archive does not hold end
// unrecoverable; each new gap of the public feed is attached to the hour it
// was detected in; with coverage on, each finished hour the poller was live
// in is queued once; hours with work left get their job back (one that
// ran out of attempts). It also prunes old hours and refreshes the coverage
// gauge.
func (b *Backfill) Plan(ctx context.Context, client *jobs.Client) error {
	now := b.cfg.Now()
	var resolved []resolvedGap
	err := pgx.BeginFunc(ctx, b.cfg.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			UPDATE crawl_gaps SET state = 'unrecoverable', resolved_at = $2, note = 'GH Archive holds only the public feed'
			WHERE state = 'open' AND feed <> $1 RETURNING feed`, FeedPublic, now)
		if err != nil {
			return fmt.Errorf("close gaps of other feeds: %w", err)
		}
		feeds, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("close gaps of other feeds: %w", err)
		}
		for _, f := range feeds {
			b.m.resolved.WithLabelValues(f, "unrecoverable").Inc()
		}
		rows, err = tx.Query(ctx, `
			SELECT id, detected_at FROM crawl_gaps WHERE state = 'open' AND feed = $1 AND hour_lo IS NULL
			ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED`, FeedPublic)
		if err != nil {
			return fmt.Errorf("read new gaps: %w", err)
		}
		type newGap struct {
			id       int64
			detected time.Time
		}
		gaps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (newGap, error) {
			var g newGap
			return g, r.Scan(&g.id, &g.detected)
		})
		if err != nil {
			return fmt.Errorf("read new gaps: %w", err)
		}
		hours := map[time.Time]bool{}
		for _, g := range gaps {
			h := hourOf(g.detected)
			if _, err := tx.Exec(ctx, `UPDATE crawl_gaps SET hour_lo = $2, hour_hi = $2 WHERE id = $1`, g.id, h); err != nil {
				return fmt.Errorf("start backfill of gap %d: %w", g.id, err)
			}
			if err := attachTx(ctx, tx, g.id, h); err != nil {
				return err
			}
			hours[h] = true
		}
		if b.cfg.Coverage {
			rows, err := tx.Query(ctx, `
				INSERT INTO gharchive_hours (hour)
				SELECT l.hour FROM crawl_live_hours l
				WHERE l.feed = $1 AND l.hour <= $2 AND l.hour > $3
				ON CONFLICT (hour) DO NOTHING RETURNING hour`,
				FeedPublic, now.Add(-time.Hour-b.cfg.PublishDelay), now.Add(-coverageHorizon))
			if err != nil {
				return fmt.Errorf("queue coverage hours: %w", err)
			}
			hs, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
			if err != nil {
				return fmt.Errorf("queue coverage hours: %w", err)
			}
			for _, h := range hs {
				hours[h] = true
			}
		}
		rows, err = tx.Query(ctx, `
			SELECT hour FROM gharchive_hours WHERE state = 'pending'
			UNION SELECT hour FROM crawl_gap_hours WHERE NOT done`)
		if err != nil {
			return fmt.Errorf("read hours with work left: %w", err)
		}
		left, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil {
			return fmt.Errorf("read hours with work left: %w", err)
		}
		for _, h := range left {
			hours[h] = true
		}
		if err := b.queueHoursTx(ctx, tx, client, hours); err != nil {
			return err
		}
		// A safety net: gaps whose hours are all read but that no hour job
		// ended (none should remain).
		rows, err = tx.Query(ctx, `
			SELECT id FROM crawl_gaps g WHERE g.state = 'open' AND g.hour_lo IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM crawl_gap_hours gh WHERE gh.gap_id = g.id AND NOT gh.done)`)
		if err != nil {
			return fmt.Errorf("read finished gaps: %w", err)
		}
		finished, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("read finished gaps: %w", err)
		}
		if resolved, err = resolveGapsTx(ctx, tx, finished, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM crawl_live_hours WHERE hour < $1`, now.Add(-archiveKeep)); err != nil {
			return fmt.Errorf("prune live counts: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			DELETE FROM gharchive_hours a WHERE a.hour < $1
				AND NOT EXISTS (SELECT 1 FROM crawl_gap_hours gh WHERE gh.hour = a.hour AND NOT gh.done)`, now.Add(-archiveKeep)); err != nil {
			return fmt.Errorf("prune archive hours: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("plan archive backfill: %w", err)
	}
	b.countResolved(resolved)
	b.refreshCoverage(ctx)
	return nil
}

// attachTx makes a gap need an hour.
func attachTx(ctx context.Context, tx pgx.Tx, gapID int64, hour time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO gharchive_hours (hour) VALUES ($1) ON CONFLICT (hour) DO NOTHING`, hour); err != nil {
		return fmt.Errorf("attach hour %s to gap %d: %w", ArchiveFileName(hour), gapID, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO crawl_gap_hours (gap_id, hour) VALUES ($1, $2) ON CONFLICT DO NOTHING`, gapID, hour); err != nil {
		return fmt.Errorf("attach hour %s to gap %d: %w", ArchiveFileName(hour), gapID, err)
	}
	return nil
}

// queueHoursTx queues a job per hour, not before its file should exist.
func (b *Backfill) queueHoursTx(ctx context.Context, tx pgx.Tx, client *jobs.Client, hours map[time.Time]bool) error {
	if len(hours) == 0 {
		return nil
	}
	// One job per hour: times read back from PostgreSQL carry another
	// location than hourOf's, and River refuses a batch with a unique job
	// twice.
	utc := map[time.Time]bool{}
	for h := range hours {
		utc[h.UTC()] = true
	}
	params := make([]river.InsertManyParams, 0, len(utc))
	for h := range utc {
		opts := ArchiveHourArgs{}.InsertOpts()
		if at := h.Add(time.Hour + b.cfg.PublishDelay); at.After(b.cfg.Now()) {
			opts.ScheduledAt = at
		}
		params = append(params, river.InsertManyParams{Args: ArchiveHourArgs{Hour: h.UTC()}, InsertOpts: &opts})
	}
	if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("queue %d archive hours: %w", len(params), err)
	}
	return nil
}

// consumer is one reader's interest in an hour's lines: the hour's own
// count (gap 0) or a gap's events. Each starts at its saved offset, so a
// line is counted once for each.
type consumer struct {
	gap           int64
	after, before int64 // the gap's id range, exclusive
	offset        int64 // lines consumed so far
	// this run's counts, saved with the offset
	events, skipped  int64
	found, processed int64
	batch            []json.RawMessage
}

// errMoved says another run of the same hour saved progress first (a
// rescued job running beside the original): this run stops.
var errMoved = errors.New("archive hour moved on elsewhere")

// ReadHour reads one archive hour for the gaps and coverage that need it,
// saving progress every ChunkLines lines and stopping after RunBudget
// (River runs it again at once, from the saved offsets). The events of a
// gap go through the events worker as live ones do, marked via archive.
func (b *Backfill) ReadHour(ctx context.Context, client *jobs.Client, hour time.Time) error {
	hour = hour.UTC()
	started := b.cfg.Now()
	var state string
	var hourOffset int64
	err := b.cfg.Pool.QueryRow(ctx, `SELECT state, line_offset FROM gharchive_hours WHERE hour = $1`, hour).Scan(&state, &hourOffset)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // pruned
	}
	if err != nil {
		return fmt.Errorf("read archive hour %s: %w", ArchiveFileName(hour), err)
	}
	if state == "missing" {
		return b.finishMissing(ctx, hour, "")
	}
	var cs []*consumer
	if state == "pending" {
		cs = append(cs, &consumer{offset: hourOffset})
	}
	rows, err := b.cfg.Pool.Query(ctx, `
		SELECT gh.gap_id, g.after_event_id, g.before_event_id, gh.line_offset
		FROM crawl_gap_hours gh JOIN crawl_gaps g ON g.id = gh.gap_id
		WHERE gh.hour = $1 AND NOT gh.done ORDER BY gh.gap_id`, hour)
	if err != nil {
		return fmt.Errorf("read gaps of archive hour %s: %w", ArchiveFileName(hour), err)
	}
	gcs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*consumer, error) {
		c := &consumer{}
		return c, r.Scan(&c.gap, &c.after, &c.before, &c.offset)
	})
	if err != nil {
		return fmt.Errorf("read gaps of archive hour %s: %w", ArchiveFileName(hour), err)
	}
	cs = append(cs, gcs...)
	if len(cs) == 0 {
		return nil
	}
	if publish := hour.Add(time.Hour + b.cfg.PublishDelay); started.Before(publish) {
		return river.JobSnooze(publish.Sub(started))
	}

	name := ArchiveFileName(hour)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.BaseURL+"/"+name, nil)
	if err != nil {
		return fmt.Errorf("archive request: %w", err)
	}
	resp, err := b.cfg.HTTP.Do(req)
	if err == nil && resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		err = fmt.Errorf("GET %s: status %d", name, resp.StatusCode)
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("GET %s: not published: %w", name, errNotPublished)
		}
	}
	if err != nil {
		if !started.Before(hour.Add(time.Hour + b.cfg.GiveUpAfter)) {
			b.cfg.Logger.Warn("GH Archive hour unavailable; its gaps are unrecoverable", slog.String("hour", name), slog.Any("error", err))
			return b.finishMissing(ctx, hour, "GH Archive file "+name+" unavailable: "+truncate(err.Error(), 200))
		}
		if errors.Is(err, errNotPublished) {
			return river.JobSnooze(b.cfg.RetryEvery)
		}
		return fmt.Errorf("archive hour: %w", err)
	}
	defer resp.Body.Close()
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		return fmt.Errorf("archive hour %s: %w", name, err)
	}
	fetched := b.cfg.Now()
	lr := newLineReader(gz, b.cfg.MaxLineBytes)

	start := cs[0].offset
	for _, c := range cs {
		start = min(start, c.offset)
	}
	var line int64 // lines consumed
	for ; line < start; line++ {
		if _, _, err := lr.next(); err != nil {
			if errors.Is(err, io.EOF) {
				break // the file is shorter than before: finish below
			}
			return fmt.Errorf("archive hour %s: skip to line %d: %w", name, start, err)
		}
	}
	// The budget counts from here: skipping to the saved offset costs
	// decompression only, and each run must make real progress.
	budgetFrom := b.cfg.Now()
	// A run also stops short of its job's deadline, so that a long skip
	// cannot make it lose the chunk it is reading.
	deadline, hasDeadline := ctx.Deadline()
	var minID, maxID int64
	chunkStart, runStart := line, line
	for {
		raw, oversized, err := lr.next()
		eof := errors.Is(err, io.EOF)
		if err != nil && !eof {
			return fmt.Errorf("archive hour %s at line %d: %w", name, line, err)
		}
		if !eof {
			b.consume(cs, line, raw, oversized, &minID, &maxID)
			line++
		}
		overBudget := line%256 == 0 && line-runStart >= int64(b.cfg.ChunkLines) &&
			(b.cfg.Now().Sub(budgetFrom) >= b.cfg.RunBudget || hasDeadline && time.Until(deadline) < 10*time.Second)
		if !eof && line-chunkStart < int64(b.cfg.ChunkLines) && !overBudget {
			continue
		}
		if err := b.flush(ctx, cs, fetched); err != nil {
			return err
		}
		again, err := b.saveChunk(ctx, client, hour, cs, line, minID, maxID, eof)
		if err != nil {
			if errors.Is(err, errMoved) {
				b.cfg.Logger.Info("archive hour read elsewhere; stopping", slog.String("hour", name))
				return nil
			}
			return err
		}
		if again {
			// A gap attached while this run read the file: read it again for
			// that gap (a new job would be refused while this one runs).
			return river.JobSnooze(0)
		}
		if eof {
			return nil
		}
		if overBudget {
			// Continue in a fresh run from the saved offsets: a job never
			// outlives River's rescue window.
			return river.JobSnooze(0)
		}
		chunkStart = line
	}
}

var errNotPublished = errors.New("not published")

// consume counts line n for each consumer that has not seen it yet and
// gathers a gap's events for the pipeline.
func (b *Backfill) consume(cs []*consumer, n int64, raw []byte, oversized bool, minID, maxID *int64) {
	var id int64
	var err error
	if oversized {
		err = errors.New("oversized")
	} else if len(raw) == 0 {
		return // a blank line is nothing, not a skip
	} else {
		id, err = archiveEventID(raw)
	}
	if err == nil {
		if *minID == 0 || id < *minID {
			*minID = id
		}
		*maxID = max(*maxID, id)
	}
	for _, c := range cs {
		if c.offset > n {
			continue
		}
		if c.gap == 0 {
			if err != nil {
				c.skipped++
				b.m.lines.WithLabelValues("skipped").Inc()
			} else {
				c.events++
				b.m.lines.WithLabelValues("event").Inc()
			}
			continue
		}
		if err == nil && id > c.after && id < c.before {
			c.found++
			c.batch = append(c.batch, json.RawMessage(append([]byte(nil), raw...)))
		}
	}
}

// flush hands each gap's gathered events to the events worker.
func (b *Backfill) flush(ctx context.Context, cs []*consumer, fetched time.Time) error {
	for _, c := range cs {
		for len(c.batch) > 0 {
			n := min(len(c.batch), 100)
			handled, err := b.cfg.Events.handleVia(ctx, FeedPublic, c.batch[:n], fetched, ViaArchive)
			if err != nil {
				return fmt.Errorf("backfill gap %d: %w", c.gap, err)
			}
			c.processed += int64(handled)
			c.batch = c.batch[n:]
		}
		c.batch = nil
	}
	return nil
}

// saveChunk saves every consumer's offset and counts up to line, in one
// transaction; at the end of the file it also finishes the hour's gaps,
// and says whether a gap attached meanwhile needs the hour read again.
func (b *Backfill) saveChunk(ctx context.Context, client *jobs.Client, hour time.Time, cs []*consumer, line, minID, maxID int64, eof bool) (again bool, _ error) {
	now := b.cfg.Now()
	var done []int64
	var hourDone bool
	var resolved []resolvedGap
	err := pgx.BeginFunc(ctx, b.cfg.Pool, func(tx pgx.Tx) error {
		if minID > 0 {
			if _, err := tx.Exec(ctx, `
				UPDATE gharchive_hours SET min_id = LEAST(COALESCE(min_id, $2), $2), max_id = GREATEST(COALESCE(max_id, $3), $3)
				WHERE hour = $1`, hour, minID, maxID); err != nil {
				return fmt.Errorf("save archive hour ids: %w", err)
			}
		}
		for _, c := range cs {
			if c.offset >= line && !eof {
				continue // not reached yet
			}
			to := max(line, c.offset)
			var tag interface{ RowsAffected() int64 }
			var err error
			if c.gap == 0 {
				tag, err = tx.Exec(ctx, `
					UPDATE gharchive_hours SET line_offset = $3, events = events + $4, skipped = skipped + $5,
						state = CASE WHEN $6 THEN 'done' ELSE state END, done_at = CASE WHEN $6 THEN $7::timestamptz END
					WHERE hour = $1 AND state = 'pending' AND line_offset = $2`,
					hour, c.offset, to, c.events, c.skipped, eof, now)
				hourDone = eof
			} else {
				tag, err = tx.Exec(ctx, `
					UPDATE crawl_gap_hours SET line_offset = $4, done = $5
					WHERE gap_id = $1 AND hour = $2 AND NOT done AND line_offset = $3`, c.gap, hour, c.offset, to, eof)
				if err == nil && tag.RowsAffected() == 1 {
					_, err = tx.Exec(ctx, `
						UPDATE crawl_gaps SET archive_found = archive_found + $2, archive_processed = archive_processed + $3
						WHERE id = $1`, c.gap, c.found, c.processed)
				}
				if eof {
					done = append(done, c.gap)
				}
			}
			if err != nil {
				return fmt.Errorf("save archive progress: %w", err)
			}
			if tag.RowsAffected() != 1 {
				return errMoved
			}
		}
		if !eof {
			return nil
		}
		if err := b.extendTx(ctx, tx, client, hour, done); err != nil {
			return err
		}
		var err error
		resolved, err = resolveGapsTx(ctx, tx, done, now)
		if err != nil {
			return err
		}
		// A gap attached while this run read the file still needs it.
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM crawl_gap_hours WHERE hour = $1 AND NOT done)`, hour).Scan(&again); err != nil {
			return fmt.Errorf("check archive hour: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, c := range cs {
		if c.gap != 0 {
			b.m.gapEv.WithLabelValues("found").Add(float64(c.found))
			b.m.gapEv.WithLabelValues("processed").Add(float64(c.processed))
		}
		c.offset = max(c.offset, line)
		c.events, c.skipped, c.found, c.processed = 0, 0, 0, 0
	}
	if hourDone {
		b.m.hours.WithLabelValues("read").Inc()
		b.refreshCoverage(ctx)
	}
	b.countResolved(resolved)
	return again, nil
}

// extendTx widens the gaps that finished an hour when the archive shows
// they go on: back an hour while the file starts inside the gap (ids only
// grow), forward an hour while it ends inside it (an event of the gap's last
// minutes can be filed in the next hour). The walk back stops after
// MaxHours, and the gap says so.
func (b *Backfill) extendTx(ctx context.Context, tx pgx.Tx, client *jobs.Client, hour time.Time, gaps []int64) error {
	if len(gaps) == 0 {
		return nil
	}
	var minID, maxID *int64
	if err := tx.QueryRow(ctx, `SELECT min_id, max_id FROM gharchive_hours WHERE hour = $1`, hour).Scan(&minID, &maxID); err != nil {
		return fmt.Errorf("read archive hour ids: %w", err)
	}
	queue := map[time.Time]bool{}
	for _, id := range gaps {
		var after, before int64
		var lo, hi, detected time.Time
		if err := tx.QueryRow(ctx, `
			SELECT after_event_id, before_event_id, hour_lo, hour_hi, detected_at FROM crawl_gaps WHERE id = $1 FOR UPDATE`,
			id).Scan(&after, &before, &lo, &hi, &detected); err != nil {
			return fmt.Errorf("read gap %d: %w", id, err)
		}
		lo, hi = lo.UTC(), hi.UTC()
		if hour.Equal(lo) && (minID == nil || *minID > after) {
			if int(hourOf(detected).Sub(lo)/time.Hour) >= b.cfg.MaxHours-1 {
				if _, err := tx.Exec(ctx, `UPDATE crawl_gaps SET note = $2 WHERE id = $1 AND note = ''`, id,
					fmt.Sprintf("gap reaches back beyond %d archive hours", b.cfg.MaxHours)); err != nil {
					return fmt.Errorf("note gap %d: %w", id, err)
				}
			} else {
				lo = lo.Add(-time.Hour)
				if err := attachTx(ctx, tx, id, lo); err != nil {
					return err
				}
				queue[lo] = true
			}
		}
		if hour.Equal(hi) && (maxID == nil || *maxID < before) && hi.Before(hourOf(detected).Add(time.Hour)) {
			hi = hi.Add(time.Hour)
			if err := attachTx(ctx, tx, id, hi); err != nil {
				return err
			}
			queue[hi] = true
		}
		if _, err := tx.Exec(ctx, `UPDATE crawl_gaps SET hour_lo = $2, hour_hi = $3 WHERE id = $1`, id, lo, hi); err != nil {
			return fmt.Errorf("extend gap %d: %w", id, err)
		}
	}
	return b.queueHoursTx(ctx, tx, client, queue)
}

type resolvedGap struct{ feed, state string }

// resolveGapsTx ends the gaps whose hours are all read: backfilled, or
// unrecoverable when an hour was missing or the walk stopped short.
func resolveGapsTx(ctx context.Context, tx pgx.Tx, gaps []int64, now time.Time) ([]resolvedGap, error) {
	if len(gaps) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `
		UPDATE crawl_gaps g SET resolved_at = $2,
			state = CASE WHEN g.note <> '' THEN 'unrecoverable' ELSE 'backfilled' END
		WHERE g.id = ANY($1) AND g.state = 'open'
			AND NOT EXISTS (SELECT 1 FROM crawl_gap_hours gh WHERE gh.gap_id = g.id AND NOT gh.done)
		RETURNING feed, state`, gaps, now)
	if err != nil {
		return nil, fmt.Errorf("resolve gaps: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (resolvedGap, error) {
		var g resolvedGap
		return g, r.Scan(&g.feed, &g.state)
	})
	if err != nil {
		return nil, fmt.Errorf("resolve gaps: %w", err)
	}
	return out, nil
}

func (b *Backfill) countResolved(gs []resolvedGap) {
	for _, g := range gs {
		b.m.resolved.WithLabelValues(g.feed, g.state).Inc()
		b.cfg.Logger.Info("gap ended", slog.String("feed", g.feed), slog.String("state", g.state))
	}
}

// finishMissing records an hour as never published (note non-empty) or
// finishes the gaps attached to an hour already known missing.
func (b *Backfill) finishMissing(ctx context.Context, hour time.Time, note string) error {
	now := b.cfg.Now()
	var resolved []resolvedGap
	var newlyMissing bool
	err := pgx.BeginFunc(ctx, b.cfg.Pool, func(tx pgx.Tx) error {
		if note != "" {
			tag, err := tx.Exec(ctx, `UPDATE gharchive_hours SET state = 'missing', done_at = $2 WHERE hour = $1 AND state <> 'missing'`, hour, now)
			if err != nil {
				return fmt.Errorf("mark archive hour missing: %w", err)
			}
			newlyMissing = tag.RowsAffected() == 1
		} else {
			note = "GH Archive file " + ArchiveFileName(hour) + " unavailable"
		}
		rows, err := tx.Query(ctx, `UPDATE crawl_gap_hours SET done = true WHERE hour = $1 AND NOT done RETURNING gap_id`, hour)
		if err != nil {
			return fmt.Errorf("finish gaps of missing hour: %w", err)
		}
		gaps, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("finish gaps of missing hour: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE crawl_gaps SET note = $2 WHERE id = ANY($1) AND note = ''`, gaps, note); err != nil {
			return fmt.Errorf("note gaps of missing hour: %w", err)
		}
		resolved, err = resolveGapsTx(ctx, tx, gaps, now)
		return err
	})
	if err != nil {
		return err
	}
	if newlyMissing {
		b.m.hours.WithLabelValues("missing").Inc()
	}
	b.countResolved(resolved)
	return nil
}

// refreshCoverage sets the coverage gauge from the latest hour read.
func (b *Backfill) refreshCoverage(ctx context.Context) {
	cov, err := Coverage(ctx, b.cfg.Pool, FeedPublic, 1)
	if err != nil {
		b.cfg.Logger.Warn("read live coverage", slog.Any("error", err))
		return
	}
	if len(cov) > 0 && cov[0].Ratio != nil {
		b.m.coverage.WithLabelValues(FeedPublic).Set(*cov[0].Ratio)
	}
}

// HourCoverage compares the events a feed took live in an hour with the
// events GH Archive holds for it.
type HourCoverage struct {
	Hour    time.Time `json:"hour"`
	Live    int64     `json:"live_events"`
	Archive int64     `json:"archive_events"`
	Skipped int64     `json:"archive_skipped_lines"`
	Ratio   *float64  `json:"ratio"` // live / archive; null when the archive hour is empty
}

// Coverage returns the last n archive hours read, newest first, with the
// feed's live count for each.
func Coverage(ctx context.Context, pool *pgxpool.Pool, feed string, n int) ([]HourCoverage, error) {
	rows, err := pool.Query(ctx, `
		SELECT a.hour, COALESCE(l.events, 0), a.events, a.skipped
		FROM gharchive_hours a LEFT JOIN crawl_live_hours l ON l.hour = a.hour AND l.feed = $1
		WHERE a.state = 'done' ORDER BY a.hour DESC LIMIT $2`, feed, n)
	if err != nil {
		return nil, fmt.Errorf("read coverage of %s: %w", feed, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (HourCoverage, error) {
		var c HourCoverage
		err := r.Scan(&c.Hour, &c.Live, &c.Archive, &c.Skipped)
		c.Hour = c.Hour.UTC()
		if c.Archive > 0 {
			ratio := float64(c.Live) / float64(c.Archive)
			c.Ratio = &ratio
		}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read coverage of %s: %w", feed, err)
	}
	if out == nil {
		out = []HourCoverage{}
	}
	return out, nil
}

// queueLiveHours counts a poll's new events per hour of created_at, in the
// poll's transaction: the live side of coverage, O(hours) rows.
func queueLiveHours(batch *pgx.Batch, feed string, createdAt []time.Time) {
	counts := map[time.Time]int64{}
	for _, at := range createdAt {
		if !at.IsZero() {
			counts[hourOf(at)]++
		}
	}
	for h, n := range counts {
		batch.Queue(`
			INSERT INTO crawl_live_hours (feed, hour, events) VALUES ($1, $2, $3)
			ON CONFLICT (feed, hour) DO UPDATE SET events = crawl_live_hours.events + EXCLUDED.events`, feed, h, n)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
