package paste

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// fetchMaxAttempts bounds retries of one paste's fetch (River backs off
// between attempts); a paste still failing after them is marked failed.
const fetchMaxAttempts = 8

// FetchArgs asks for one paste to be fetched and scanned. It carries the
// listing's metadata, never text.
type FetchArgs struct {
	Source string `json:"source"`
	Item   Item   `json:"item"`
}

// Kind implements river.JobArgs.
func (FetchArgs) Kind() string { return "paste_fetch" }

// InsertOpts puts fetches on the crawl queue.
func (FetchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueCrawl, MaxAttempts: fetchMaxAttempts}
}

// FetchWorker fetches a paste and hands its texts to the shared pipeline.
// One fetch and scan runs within the default job timeout
// (LEAKWATCH_JOB_TIMEOUT), which stays within River's rescue window so that
// a fetch left running by a dead process runs again promptly.
type FetchWorker struct {
	river.WorkerDefaults[FetchArgs]
	sources  map[string]Source
	pacers   map[string]*pacer
	store    *Store
	pipeline *crawler.Pipeline
	logger   *slog.Logger
}

// NewFetchWorker returns the worker for the given sources.
func NewFetchWorker(pool *pgxpool.Pool, sources []Source, p *crawler.Pipeline, logger *slog.Logger) *FetchWorker {
	m := make(map[string]Source, len(sources))
	pacers := map[string]*pacer{}
	for _, s := range sources {
		m[s.Name()] = s
		if ps, ok := s.(paced); ok && ps.FetchInterval() > 0 {
			pacers[s.Name()] = &pacer{every: ps.FetchInterval()}
		}
	}
	return &FetchWorker{sources: m, pacers: pacers, store: NewStore(pool), pipeline: p, logger: logger}
}

// maxPaceWait is the longest a fetch waits in the job for its turn at a
// paced site; a later turn is waited for as a snooze, which holds no worker
// and counts against no timeout.
const maxPaceWait = 10 * time.Second

// Work fetches, deduplicates by content, scans and records the outcome.
// Recording findings is idempotent, so a retried job repeats nothing
// visible.
func (w *FetchWorker) Work(ctx context.Context, job *river.Job[FetchArgs]) error {
	err := w.work(ctx, job)
	var snooze *rivertype.JobSnoozeError
	if job.Args.Item.Title != "" && !errors.As(err, &snooze) && (err == nil || job.Attempt >= job.MaxAttempts || isCancel(err)) {
		// The listing's title (a gist's description, a paste's name) is
		// text from the site: a job that will not run again forgets it,
		// since River keeps finished jobs for a day.
		if _, uerr := w.store.pool.Exec(ctx, `UPDATE river_job SET args = args #- '{item,title}' WHERE id = $1`, job.ID); uerr != nil {
			w.logger.Error("drop paste title from job", slog.Int64("job_id", job.ID), slog.Any("error", uerr))
		}
	}
	return err
}

func isCancel(err error) bool {
	var c *rivertype.JobCancelError
	return errors.As(err, &c)
}

func (w *FetchWorker) work(ctx context.Context, job *river.Job[FetchArgs]) error {
	a := job.Args
	key := a.Item.Key()
	log := w.logger.With(slog.String("paste_source", a.Source), slog.String("paste_key", key))
	src, ok := w.sources[a.Source]
	if !ok {
		err := fmt.Errorf("paste source %q is not configured in this process", a.Source)
		if ferr := w.store.finish(ctx, a.Source, key, StatusSkipped, err.Error(), 0, 0); ferr != nil {
			return ferr
		}
		return river.JobCancel(err)
	}
	if p := w.pacers[a.Source]; p != nil {
		if later := p.wait(ctx, maxPaceWait); later > 0 {
			return river.JobSnooze(later)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	parts, err := src.Fetch(ctx, a.Item)
	fetchedAt := time.Now()
	until, limited := rateLimitedUntil(err)
	switch {
	case err == nil:
	case limited:
		// Waiting for a rate limit is not a failed attempt.
		log.Info("rate limited; fetch postponed", slog.Time("until", until))
		return river.JobSnooze(max(time.Second, time.Until(until)))
	case errors.Is(err, ErrGone):
		log.Info("paste deleted before fetch")
		if ferr := w.store.finish(ctx, a.Source, key, StatusDeleted, err.Error(), 0, 0); ferr != nil {
			return ferr
		}
		return river.JobCancel(err)
	case errors.Is(err, ErrMalformed):
		log.Warn("skipping malformed paste", slog.Any("error", err))
		if ferr := w.store.finish(ctx, a.Source, key, StatusSkipped, err.Error(), 0, 0); ferr != nil {
			return ferr
		}
		return river.JobCancel(err)
	case errors.Is(err, ErrNotReady):
		return river.JobSnooze(time.Minute)
	default:
		if ferr := w.store.fetchFailed(ctx, a.Source, err); ferr != nil {
			log.Error("count fetch error", slog.Any("error", ferr))
		}
		if job.Attempt >= job.MaxAttempts {
			if ferr := w.store.finish(ctx, a.Source, key, StatusFailed, err.Error(), 0, 0); ferr != nil {
				log.Error("mark paste failed", slog.Any("error", ferr))
			}
		}
		return fmt.Errorf("fetch paste %s/%s: %w", a.Source, key, err)
	}

	docs := make([]crawler.Document, 0, len(parts))
	var detail string
	for i, part := range parts {
		if part.Truncated {
			// The detail is stored: name the part by position, since its
			// name (a paste's title) is text from the site.
			detail = fmt.Sprintf("part %d of %d scanned up to the size limit (%d bytes)", i+1, len(parts), len(part.Text))
		}
		docs = append(docs, crawler.Document{
			Source: a.Source, EventID: key, EventType: src.Kind(),
			Path: part.Name, Title: a.Item.Title, Actor: a.Item.Author, URL: part.URL, EventAt: a.Item.Date,
			FetchedAt: fetchedAt, Text: part.Text,
		})
	}
	// The pipeline de-duplicates by content: a text reposted to three sites
	// is scanned once and recorded at each.
	findings, err := w.pipeline.Process(ctx, docs)
	if err != nil {
		return fmt.Errorf("scan paste %s/%s: %w", a.Source, key, err)
	}
	if err := w.store.finish(ctx, a.Source, key, StatusScanned, detail, len(parts), findings); err != nil {
		return err
	}
	if findings > 0 {
		log.Info("registered keys found in paste", slog.Int("findings", findings))
	}
	return nil
}

// AddWorkers registers the paste workers.
func AddWorkers(ws *river.Workers, w *FetchWorker) { river.AddWorker(ws, w) }
