package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// Kind implements river.JobArgs.
func (PushArgs) Kind() string { return "github_push" }

// InsertOpts puts pushes on the crawl queue, one job per push.
func (PushArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueCrawl, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Kind implements river.JobArgs.
func (WikiArgs) Kind() string { return "github_wiki" }

// InsertOpts puts wiki fetches on the crawl queue.
func (WikiArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueCrawl, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Kind implements river.JobArgs.
func (TreeArgs) Kind() string { return "github_tree" }

// InsertOpts puts tree scans on the crawl queue at low priority: they are
// large and rarely urgent compared with fresh pushes.
func (TreeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueCrawl, Priority: 4, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// fetchOutcome turns a fetch error into what River should do: wait for a
// token on rate limits (a snooze does not use up an attempt), give up on a
// repository that is gone, retry otherwise.
func fetchOutcome(f *Fetcher, what string, res FetchResult, err error) error {
	if err == nil {
		return nil
	}
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		wait := time.Until(rl.Until) + time.Second
		f.logger.Info("rate limited; snoozing", slog.String("job", what), slog.Duration("wait", wait))
		return river.JobSnooze(max(wait, time.Second))
	}
	if isGone(err) {
		f.logger.Info("gone from GitHub; not retrying", slog.String("job", what), slog.Any("error", err))
		return river.JobCancel(err)
	}
	return fmt.Errorf("%s (after %d commits, %d files): %w", what, res.Commits, res.Files, err)
}

// PushWorker fetches and scans pushes.
type PushWorker struct {
	river.WorkerDefaults[PushArgs]
	f *Fetcher
}

// Work implements river.Worker. A push that finds every token out of
// budget snoozes until the earliest reset (a snooze uses up no attempt),
// newest pushes first (pushSnooze), and sends no request meanwhile.
func (w *PushWorker) Work(ctx context.Context, job *river.Job[PushArgs]) error {
	a := job.Args
	res, err := w.f.Push(withSlice(ctx, w.f.cfg.PushTimeout), a)
	more, qerr := continueLater(ctx, err)
	if more {
		err = qerr // the rest of the push goes on in a follow-up job
	}
	var rl *RateLimitedError
	switch {
	case err == nil:
		_ = river.RecordOutput(ctx, res)
	case errors.As(err, &rl):
		w.f.coverage.noteDeferred()
		return river.JobSnooze(pushSnooze(rl.Until, time.Now(), a.EventAt))
	}
	out := fetchOutcome(w.f, "push "+a.Repo+"@"+short(a.Head), res, err)
	var cancel *rivertype.JobCancelError
	if (err == nil && !more) || errors.As(out, &cancel) {
		if cerr := w.f.coverage.noteFetched(ctx, a.EventAt); cerr != nil {
			w.f.logger.Warn("push coverage not counted", slog.Any("error", cerr))
		}
	}
	return out
}

// Timeout bounds one slice of a push; a longer push goes on in a follow-up
// job, so a crashed one is re-run within the rescue window.
func (w *PushWorker) Timeout(*river.Job[PushArgs]) time.Duration { return w.f.cfg.PushTimeout }

// WikiWorker fetches and scans wiki pages.
type WikiWorker struct {
	river.WorkerDefaults[WikiArgs]
	f *Fetcher
}

// Work implements river.Worker.
func (w *WikiWorker) Work(ctx context.Context, job *river.Job[WikiArgs]) error {
	res, err := w.f.Wiki(ctx, job.Args)
	if err == nil {
		_ = river.RecordOutput(ctx, res)
	}
	return fetchOutcome(w.f, "wiki "+job.Args.Repo, res, err)
}

// TreeWorker scans repositories made public.
type TreeWorker struct {
	river.WorkerDefaults[TreeArgs]
	f *Fetcher
}

// Work implements river.Worker.
func (w *TreeWorker) Work(ctx context.Context, job *river.Job[TreeArgs]) error {
	res, err := w.f.Tree(withSlice(ctx, w.f.cfg.PushTimeout), job.Args)
	if more, qerr := continueLater(ctx, err); more {
		err = qerr
	}
	if err == nil {
		_ = river.RecordOutput(ctx, res)
	}
	return fetchOutcome(w.f, "tree "+job.Args.Repo, res, err)
}

// Timeout bounds one slice of a tree, as for pushes.
func (w *TreeWorker) Timeout(*river.Job[TreeArgs]) time.Duration { return w.f.cfg.PushTimeout }

// AddFetchWorkers registers the push, wiki and tree workers.
func AddFetchWorkers(ws *river.Workers, f *Fetcher) {
	river.AddWorker(ws, &PushWorker{f: f})
	river.AddWorker(ws, &WikiWorker{f: f})
	river.AddWorker(ws, &TreeWorker{f: f})
}
