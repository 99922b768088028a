package github

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/matcher"
)

// handoffs records when each event's first finding reached the recorder.
type handoffs struct {
	mu   sync.Mutex
	at   map[string]time.Time
	cond chan struct{}
}

func (h *handoffs) Record(_ context.Context, fs []crawler.Finding) error {
	now := time.Now()
	h.mu.Lock()
	for _, f := range fs {
		if _, ok := h.at[f.EventID]; !ok {
			h.at[f.EventID] = now
		}
	}
	h.mu.Unlock()
	select {
	case h.cond <- struct{}{}:
	default:
	}
	return nil
}

func (h *handoffs) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.at)
}

type crawlRun struct {
	events     int
	planted    int
	found      int
	elapsed    time.Duration
	latencies  []time.Duration
	gaps       int64
	pushJobs   int
	dedupRows  int
	pollPeriod time.Duration
}

// runCrawl publishes total synthetic events at rate into the fake GitHub and
// runs the real poller, River workers (events on the scan queue, pushes on
// the crawl queue), fetcher and pipeline (1,000 registered keys, content
// dedup on) until every planted event has been handed to the recorder.
func runCrawl(b *testing.B, rate float64, total int, pollEvery time.Duration) crawlRun {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbtest.URL(b)+"&pool_max_conns=40")
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	var orgID int64
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('bench') RETURNING id`).Scan(&orgID); err != nil {
		b.Fatal(err)
	}
	secret := randomToken(b, "ghp_", 36)
	for i := range 1000 {
		s := secret
		if i > 0 {
			s = randomToken(b, "ghp_", 36)
		}
		fp, err := matcher.Compute([]byte(s), matcher.ComputeOpts{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, $2, $3, $4)`,
			orgID, "key-"+strconv.Itoa(i), fp.String(), fp.Provider()); err != nil {
			b.Fatal(err)
		}
	}
	logger := discardLogger()
	reg := keys.NewRegistry(pool, logger)
	if err := reg.Load(ctx); err != nil {
		b.Fatal(err)
	}
	srv := githubtest.NewServer()
	defer srv.Close()
	srv.SetPollInterval(1)
	// GitHub gives 5,000 requests/hour per token; the benchmark measures the
	// crawler, not the budget (see the report for tokens needed).
	srv.SetRateLimit(1 << 30)
	traffic := srv.NewTraffic(secret, 10_000_000, 50)
	client, err := NewClientWithConfig(ClientConfig{BaseURL: srv.APIURL(), RawURL: srv.RawURL(), Tokens: []string{"a", "b", "c", "d"}})
	if err != nil {
		b.Fatal(err)
	}
	rec := &handoffs{at: map[string]time.Time{}, cond: make(chan struct{}, 1)}
	dedupTTL := time.Hour
	if os.Getenv("BENCH_DEDUP") == "0" {
		dedupTTL = 0
	}
	pipeline := crawler.NewPipeline(reg, rec, nil).WithDedup(pool, dedupTTL)
	workers := river.NewWorkers()
	AddWorkers(workers, NewEventsWorker(pool, pipeline, nil, logger))
	AddFetchWorkers(workers, NewFetcher(client, pipeline, FetchConfig{}, nil, logger))
	crawlWorkers := 64
	if n, err := strconv.Atoi(os.Getenv("BENCH_CRAWL_WORKERS")); err == nil && n > 0 {
		crawlWorkers = n
	}
	rc, err := jobs.NewClient(pool, jobs.Config{Logger: logger, Workers: workers, Scan: 4, Crawl: crawlWorkers})
	if err != nil {
		b.Fatal(err)
	}
	if err := rc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = rc.Stop(context.Background()) }()
	plog := logger
	if os.Getenv("BENCH_DEBUG") != "" {
		plog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	poller := NewPoller(PollerConfig{Client: client, Pool: pool, River: rc, Logger: plog, NoWatches: true, MinInterval: pollEvery})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go poller.Run(runCtx)

	var pubMu sync.Mutex
	published := map[int64]time.Time{}
	planted := 0
	b.ResetTimer()
	start := time.Now()
	record := func(ids []int64, at time.Time) {
		pubMu.Lock()
		defer pubMu.Unlock()
		for _, id := range ids {
			if traffic.Planted(id) {
				published[id] = at
			}
		}
	}
	if rate > 0 {
		go traffic.Run(runCtx, rate, total, record)
	} else {
		// Closed loop: publish 250 events whenever the poller has taken the
		// previous ones, so the 300-event timeline never overflows and the
		// rate is what poll → fetch → scan sustains.
		go func() {
			next := int64(10_000_000)
			for sent := 0; sent < total && runCtx.Err() == nil; {
				n := min(250, total-sent)
				srv.Publish(traffic.Make(n)...)
				ids := make([]int64, n)
				for i := range ids {
					ids[i] = next + int64(i)
				}
				record(ids, time.Now())
				next += int64(n)
				sent += n
				if sent == total {
					b.Logf("the poller took all %d events in %v", total, time.Since(start).Round(time.Millisecond))
				}
				for runCtx.Err() == nil {
					poller.mu.Lock()
					cp := poller.cps[FeedPublic]
					poller.mu.Unlock()
					if cp.lastID >= next-1 {
						break
					}
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
	}
	// Planted: every push, comment and pull request (9 events in 10).
	for i := range total {
		if (10_000_000+int64(i))%10 != 9 {
			planted++
		}
	}
	deadline := time.After(time.Duration(float64(total)/max(rate, 1000)*float64(time.Second)) + 120*time.Second)
wait:
	for rec.count() < planted {
		select {
		case <-rec.cond:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			break wait
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	run := crawlRun{events: total, planted: planted, found: rec.count(), elapsed: elapsed, pollPeriod: pollEvery}
	rec.mu.Lock()
	pubMu.Lock()
	for id, at := range published {
		if h, ok := rec.at[strconv.FormatInt(id, 10)]; ok {
			run.latencies = append(run.latencies, h.Sub(at))
		}
	}
	pubMu.Unlock()
	rec.mu.Unlock()
	slices.Sort(run.latencies)
	_ = pool.QueryRow(ctx, `SELECT COALESCE(sum(gaps_total), 0) FROM crawl_feeds`).Scan(&run.gaps)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'github_push'`).Scan(&run.pushJobs)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM crawl_content`).Scan(&run.dedupRows)
	if rows, err := pool.Query(ctx, `SELECT kind, state, count(*), max(errors::text) FROM river_job GROUP BY 1, 2 ORDER BY 1, 2`); err == nil {
		for rows.Next() {
			var kind, state string
			var n int
			var errs *string
			_ = rows.Scan(&kind, &state, &n, &errs)
			e := ""
			if errs != nil {
				e = (*errs)[:min(len(*errs), 300)]
			}
			b.Logf("jobs %s %s: %d %s", kind, state, n, e)
		}
		rows.Close()
	}
	return run
}

func pct(ls []time.Duration, p float64) time.Duration {
	if len(ls) == 0 {
		return 0
	}
	return ls[min(len(ls)-1, int(float64(len(ls))*p))]
}

func (r crawlRun) report(b *testing.B) {
	b.ReportMetric(float64(r.events)/r.elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(pct(r.latencies, 0.50).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(pct(r.latencies, 0.99).Milliseconds()), "p99-ms")
	b.Logf("%d events (%d with a planted secret, %d handed off) in %v; %d push jobs; %d gaps; poll every %v; latency p50 %v p99 %v max %v",
		r.events, r.planted, r.found, r.elapsed.Round(time.Millisecond), r.pushJobs, r.gaps, r.pollPeriod,
		pct(r.latencies, 0.5).Round(time.Millisecond), pct(r.latencies, 0.99).Round(time.Millisecond), pct(r.latencies, 1).Round(time.Millisecond))
	if r.found < r.planted {
		b.Errorf("only %d of %d planted events were handed off", r.found, r.planted)
	}
	if r.gaps > 0 {
		b.Errorf("%d gaps: the poller fell behind the timeline", r.gaps)
	}
}

// BenchmarkCrawlThroughput publishes 20,000 events as fast as the poller
// takes them (250 at a time, so the 300-event timeline never overflows) and
// measures how fast poll → fetch → scan → hand-off drains them: events/s
// is from the first publish to the last hand-off. Run with -benchtime=1x.
func BenchmarkCrawlThroughput(b *testing.B) {
	for range b.N {
		runCrawl(b, 0, 20_000, 10*time.Millisecond).report(b)
	}
}

// BenchmarkCrawlOpenLoop publishes at a fixed 2,000 events/s whatever the
// crawler does: it fails with gaps when the poller cannot keep up with a
// timeline that turns over every 150 ms. Run with -benchtime=1x.
func BenchmarkCrawlOpenLoop(b *testing.B) {
	for range b.N {
		runCrawl(b, 2000, 20_000, 20*time.Millisecond).report(b)
	}
}

// BenchmarkCrawlLatency publishes 200 events/s for 15 s and reports the
// p50/p99 time from an event appearing in the fake to its finding being
// handed to incidents, polling every 250 ms. Run with -benchtime=1x.
func BenchmarkCrawlLatency(b *testing.B) {
	for range b.N {
		runCrawl(b, 200, 3000, 250*time.Millisecond).report(b)
	}
}
