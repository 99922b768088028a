package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// BenchmarkScaleOutWorkers measures how fast 1, 2 and 3 worker processes
// (the real binary, LEAKWATCH_WORKERS_SCAN at its default of 4 each) work
// off the same backlog: two crawler processes poll the fake's stream
// (recorded events, half pushes, each push a commit to fetch) for
// BENCH_SCALE_SECONDS (default 20) at BENCH_SCALE_RATE events/s (default
// 200) with no worker running, so the events wait as jobs; then the
// workers start. events/s is the events queued over the time, in the
// database, from the first event job a worker took to the last one done;
// events/s-with-pushes runs until the last push fetch they caused (worked
// by the two crawlers) is done too. BENCH_SCALE_SCAN sets each worker's
// LEAKWATCH_WORKERS_SCAN (default 4). Run with -benchtime=1x.
func BenchmarkScaleOutWorkers(b *testing.B) {
	secs, rate := 20, 200.0
	if n, err := strconv.Atoi(os.Getenv("BENCH_SCALE_SECONDS")); err == nil && n > 0 {
		secs = n
	}
	if r, err := strconv.ParseFloat(os.Getenv("BENCH_SCALE_RATE"), 64); err == nil && r > 0 {
		rate = r
	}
	bin := buildBinary(b, b.TempDir())
	for _, workers := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("%dworkers", workers), func(b *testing.B) {
			for range b.N {
				events, scan, all := runScaleDrain(b, bin, workers, rate, time.Duration(secs)*time.Second)
				b.ReportMetric(float64(events)/scan.Seconds(), "events/s")
				b.ReportMetric(float64(events)/all.Seconds(), "events/s-with-pushes")
				b.ReportMetric(float64(events), "events")
			}
		})
	}
}

// runScaleDrain queues a backlog with crawlers only, then times workers
// working it off. It returns the events queued and the drain time.
func runScaleDrain(b *testing.B, bin string, workers int, rate float64, d time.Duration) (events int64, scan, all time.Duration) {
	b.Helper()
	ctx := context.Background()
	dbURL := dbtest.URL(b)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	gh := githubtest.NewServer()
	b.Cleanup(gh.Close)
	mix, err := recordedMix(gh, 0.5)
	if err != nil {
		b.Fatal(err)
	}
	const seedID = 39_999_999_999
	gh.Publish(githubtest.CommentEvent(seedID, "octo/seed", "u", "seed", time.Now()))
	toks := make([]string, 20)
	for i := range toks {
		toks[i] = fmt.Sprintf("bench-token-%02d", i)
	}
	f := &fleet{t: b, bin: bin, logs: &syncBuffer{}, procs: map[string]*fleetProc{}, env: append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"LEAKWATCH_HTTP_ADDR=127.0.0.1:0",
		"LEAKWATCH_OPS_ADDR=127.0.0.1:0",
		"LEAKWATCH_WEBHOOK_ALLOW_NETS=127.0.0.0/8",
		"LEAKWATCH_GITHUB_API_URL="+gh.APIURL(),
		"LEAKWATCH_GITHUB_RAW_URL="+gh.RawURL(),
		"LEAKWATCH_GITHUB_TOKENS="+strings.Join(toks, ","),
		"LEAKWATCH_GHARCHIVE_URL=off",
		"LEAKWATCH_LOG_FORMAT=json",
		"LEAKWATCH_LOG_LEVEL=warn",
	)}
	if n := os.Getenv("BENCH_SCALE_SCAN"); n != "" {
		f.env = append(f.env, "LEAKWATCH_WORKERS_SCAN="+n)
	}
	b.Cleanup(func() {
		f.stop()
		if b.Failed() {
			b.Logf("logs:\n%s", f.logs.String())
		}
	})
	f.start("crawler-1", RoleCrawler)
	f.start("crawler-2", RoleCrawler)
	checkpoint := func() (lastID, total int64) {
		_ = pool.QueryRow(ctx, `SELECT COALESCE(last_event_id, 0), events_total FROM crawl_feeds WHERE name = $1`,
			ghcrawler.FeedPublic).Scan(&lastID, &total)
		return lastID, total
	}
	var base int64
	eventually(b, "the seed event polled", 60*time.Second, func() bool {
		var last int64
		last, base = checkpoint()
		return last >= seedID
	})
	st, err := gh.StartStream(githubtest.StreamOpts{Rate: rate, FirstID: seedID + 1, Make: mix})
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(d)
	st.Stop()
	last := st.NextID() - 1
	eventually(b, "the crawlers to queue the last event", 30*time.Second, func() bool {
		got, _ := checkpoint()
		return got >= last
	})
	_, total := checkpoint()
	events = total - base

	pending := func() int {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state IN ('available', 'running', 'retryable', 'scheduled')
			AND kind IN ('github_events', 'github_push')`).Scan(&n)
		return n
	}
	for i := range workers {
		f.start(fmt.Sprintf("worker-%d", i+1), RoleWorker)
	}
	eventually(b, "the backlog worked off", 10*time.Minute, func() bool { return pending() == 0 })
	// Timed in the database, from the first event job a worker took to the
	// last one done: process start-up is not the workers' throughput, and
	// the push fetches they cause are the crawlers' work (timed apart).
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT max(finalized_at) - min(attempted_at) FROM river_job WHERE kind = 'github_events'),
		(SELECT max(finalized_at) - min(attempted_at) FROM river_job WHERE kind IN ('github_events', 'github_push'))`).Scan(&scan, &all); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d workers: %d events (%v at %.0f/s) scanned in %s (%.0f events/s); with the push fetches they caused, on 2 crawlers: %s (%.0f events/s)",
		workers, events, d, rate, scan.Round(100*time.Millisecond), float64(events)/scan.Seconds(), all.Round(100*time.Millisecond), float64(events)/all.Seconds())
	return events, scan, all
}
