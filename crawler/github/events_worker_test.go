package github

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// failingOnce fails the first Record, then hands findings on.
type failingOnce struct {
	next   crawler.Recorder
	failed atomic.Bool
}

func (f *failingOnce) Record(ctx context.Context, fs []crawler.Finding) error {
	if f.failed.CompareAndSwap(false, true) {
		return errors.New("database went away")
	}
	return f.next.Record(ctx, fs)
}

// TestEventBatchesLeaveNoText: a poll's payloads wait in
// github_event_batches, the jobs carry only the batch id, a batch whose
// scan fails stays for the retry, and a completed job leaves neither the
// batch nor text in its arguments or errors. A job queued before batches
// existed (events inline) loses them when it completes.
func TestEventBatchesLeaveNoText(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx := context.Background()
	at := time.Now().Add(-time.Minute).UTC()
	pipeline := crawler.NewPipeline(b.registry, &failingOnce{next: b.rec}, nil)
	workers := river.NewWorkers()
	AddWorkers(workers, NewEventsWorker(b.pool, pipeline, nil, b.logger))
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger, Workers: workers, Scan: 1, TestOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		var n int
		if err := b.pool.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	var events []json.RawMessage
	for i := range 150 {
		body := "hello"
		if i == 120 {
			body = "token " + b.secret
		}
		events = append(events, githubtest.CommentEvent(int64(7000+i), "octo/app", "u", body, at))
	}
	if err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return queueEventsTx(ctx, tx, rc, "github:events", events) }); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Insert(ctx, EventsArgs{Feed: "github:events", Events: events[120:121]}, nil); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM github_event_batches`); n != 2 {
		t.Fatalf("%d batches for 150 events, want 2", n)
	}
	if n := count(`SELECT count(*) FROM river_job WHERE kind = 'github_events' AND args ? 'events'`); n != 1 {
		t.Fatalf("%d jobs carry events, want only the legacy one", n)
	}

	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })
	deadline := time.Now().Add(20 * time.Second)
	for count(`SELECT count(*) FROM river_job WHERE state <> 'completed'`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("event jobs did not complete")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(b.rec.all()); n != 2 {
		t.Fatalf("%d findings, want 2 (batch and legacy job, after one failed attempt)", n)
	}
	if n := count(`SELECT count(*) FROM river_job WHERE errors IS NOT NULL`); n != 1 {
		t.Fatalf("%d jobs with errors, want the one that failed", n)
	}
	if n := count(`SELECT count(*) FROM github_event_batches`); n != 0 {
		t.Fatalf("%d batches left after their jobs completed", n)
	}
	rows, err := b.pool.Query(ctx, `SELECT args::text || coalesce(errors::text, '') FROM river_job`)
	if err != nil {
		t.Fatal(err)
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if strings.Contains(s, b.secret[4:]) || strings.Contains(s, "hello") {
			t.Fatalf("a finished job holds event text: %s", s)
		}
	}
}

// alwaysFailing is a recorder whose database never answers.
type alwaysFailing struct{}

func (alwaysFailing) Record(context.Context, []crawler.Finding) error {
	return errors.New("database went away")
}

// TestDiscardedEventBatchLeavesNoText: a batch whose job fails its last
// attempt is discarded by River; its payloads go with it.
func TestDiscardedEventBatchLeavesNoText(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx := context.Background()
	workers := river.NewWorkers()
	AddWorkers(workers, NewEventsWorker(b.pool, crawler.NewPipeline(b.registry, alwaysFailing{}, nil), nil, b.logger))
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger, Workers: workers, Scan: 1, TestOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal([]json.RawMessage{githubtest.CommentEvent(9001, "octo/app", "u", "token "+b.secret, time.Now().UTC())})
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO github_event_batches (feed, events) VALUES ('github:events', $1) RETURNING id`, string(raw)).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Insert(ctx, EventsArgs{Feed: "github:events", Batch: id}, &river.InsertOpts{MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		var state string
		var batches int
		if err := b.pool.QueryRow(ctx, `SELECT (SELECT state::text FROM river_job), (SELECT count(*) FROM github_event_batches)`).Scan(&state, &batches); err != nil {
			t.Fatal(err)
		}
		if state == "discarded" {
			if batches != 0 {
				t.Fatalf("%d batches left by a discarded job", batches)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s, want discarded", state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
