package github

import (
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
)

// BenchmarkPollCoverage runs the adaptive poller (default settings, only
// the tokens set) against the fake's stream at GitHub's rate with GitHub's
// X-Poll-Interval of 60 s, 100 ms per request, and reports live coverage
// (events queued / events served), requests per hour of the busiest token
// and of all polling, and duplicates queued. Run with -benchtime=1x;
// BENCH_POLL_SECONDS sets the run (default 30), BENCH_POLL_LATENCY_MS the
// fake's answer time. The obey case (GitHub's 60 s) runs two minutes at
// least: -bench 'PollCoverage/adaptive' skips it.
func BenchmarkPollCoverage(b *testing.B) {
	secs := 30
	if n, err := strconv.Atoi(os.Getenv("BENCH_POLL_SECONDS")); err == nil && n > 0 {
		secs = n
	}
	latency := 100 * time.Millisecond
	if n, err := strconv.Atoi(os.Getenv("BENCH_POLL_LATENCY_MS")); err == nil && n >= 0 {
		latency = time.Duration(n) * time.Millisecond
	}
	for _, tc := range []struct {
		rate   float64
		tokens int
		mode   string
	}{{80, 20, PollAdaptive}, {200, 45, PollAdaptive}, {80, 4, PollAdaptive}, {80, 20, PollObey}} {
		d := time.Duration(secs) * time.Second
		if tc.mode == PollObey {
			// Two minutes at least: GitHub's interval is one.
			d = max(d, 125*time.Second)
		}
		b.Run(tc.mode+"-"+strconv.Itoa(int(tc.rate))+"eps-"+strconv.Itoa(tc.tokens)+"tokens", func(b *testing.B) {
			for range b.N {
				runPollCoverage(b, tc.mode, tc.rate, tc.tokens, d, latency)
			}
		})
	}
}

func runPollCoverage(b *testing.B, mode string, rate float64, tokens int, d, latency time.Duration) {
	bb := streamBundle(b, tokens)
	cfg := PollerConfig{Mode: mode}
	if os.Getenv("BENCH_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p := newModePoller(b, bb, cfg)
	seed(b, bb, p, 39_999_999_999)
	bb.gh.SetLatency(latency)
	before := bb.gh.Usage()
	st, err := bb.gh.StartStream(githubtest.StreamOpts{Rate: rate})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	elapsed := runUntilCaughtUp(b, bb, p, st, d)
	b.StopTimer()
	served, queued, inGaps := requireAccounted(b, bb, 39_999_999_999)
	busiest, total := 0, 0
	for tok, u := range bb.gh.Usage() {
		n := u.Charged - before[tok].Charged
		total += n
		busiest = max(busiest, n)
	}
	perHour := func(n int) float64 { return float64(n) * 3600 / elapsed.Seconds() }
	var dropped float64
	for _, v := range gatherCounter(b, p.m.dups) {
		dropped += v
	}
	q := queuedIDs(b, bb)
	dups := 0
	for _, n := range q {
		dups += n - 1
	}
	b.ReportMetric(100*float64(queued)/float64(served), "live-%")
	b.ReportMetric(perHour(busiest), "req/h/busiest-token")
	b.ReportMetric(perHour(total), "poll-req/h")
	b.ReportMetric(float64(dups), "dup-queued")
	b.Logf("%s: %.0f events/s, %d tokens, %v (+ catch-up) at %v a request: %d served, %d queued live (%.2f%%), %d in recorded gaps; "+
		"%d charged poll requests (%.0f/h, busiest token %.0f/h of 5,000); %d duplicates queued, %.0f dropped within polls",
		mode, rate, tokens, d, latency, served, queued, 100*float64(queued)/float64(served), inGaps,
		total, perHour(total), perHour(busiest), dups, dropped)
}
