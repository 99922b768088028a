package github

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// tokenNames returns n fake token secrets.
func tokenNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "tok" + strconv.Itoa(i)
	}
	return out
}

// streamBundle is a test bundle whose client spreads over n tokens.
func streamBundle(t testing.TB, tokens int) testBundle {
	t.Helper()
	b := setup(t, FetchConfig{})
	c, err := NewClientWithConfig(ClientConfig{BaseURL: b.gh.APIURL(), RawURL: b.gh.RawURL(), Tokens: tokenNames(tokens)})
	require.NoError(t, err)
	b.client = c
	return b
}

func newModePoller(t testing.TB, b testBundle, cfg PollerConfig) *Poller {
	t.Helper()
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger})
	require.NoError(t, err)
	cfg.Client, cfg.Pool, cfg.River, cfg.NoWatches = b.client, b.pool, rc, true
	if cfg.Logger == nil {
		cfg.Logger = b.logger
	}
	return NewPoller(cfg)
}

// queuedIDs returns every event id handed to River, with how often.
func queuedIDs(t testing.TB, b testBundle) map[int64]int {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `
		SELECT (e->>'id')::bigint
		FROM river_job j JOIN github_event_batches b ON b.id = (j.args->>'batch')::bigint, json_array_elements(b.events) e
		WHERE j.kind = 'github_events'`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		out[id]++
	}
	require.NoError(t, rows.Err())
	return out
}

// recordedGaps returns the feed's gaps, oldest first.
func recordedGaps(t testing.TB, b testBundle) []Gap {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `
		SELECT feed, detected_at, after_event_id, before_event_id, estimated_missed FROM crawl_gaps ORDER BY after_event_id`)
	require.NoError(t, err)
	defer rows.Close()
	var out []Gap
	for rows.Next() {
		var g Gap
		require.NoError(t, rows.Scan(&g.Feed, &g.DetectedAt, &g.AfterEventID, &g.BeforeEventID, &g.EstimatedMissed))
		out = append(out, g)
	}
	return out
}

// requireAccounted checks "nothing doubled, missed never silent": no event
// was queued twice, every event queued was served, and every event served
// after fromID, up to the feed's checkpoint, was queued or lies inside a
// recorded gap.
func requireAccounted(t testing.TB, b testBundle, fromID int64) (served, queued, inGaps int) {
	t.Helper()
	var toID int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT COALESCE(max(last_event_id), 0) FROM crawl_feeds`).Scan(&toID))
	q := queuedIDs(t, b)
	for id, n := range q {
		require.Equal(t, 1, n, "event %d queued %d times", id, n)
	}
	gaps := recordedGaps(t, b)
	for _, g := range gaps {
		require.Equal(t, g.BeforeEventID-g.AfterEventID-1, g.EstimatedMissed, "gap %+v", g)
	}
	inGap := func(id int64) bool {
		for _, g := range gaps {
			if id > g.AfterEventID && id < g.BeforeEventID {
				return true
			}
		}
		return false
	}
	all := map[int64]bool{}
	for _, ev := range b.gh.Served("") {
		all[ev.ID] = true
		if ev.ID <= fromID || ev.ID > toID {
			continue
		}
		served++
		switch {
		case q[ev.ID] > 0:
			queued++
		case inGap(ev.ID):
			inGaps++
		default:
			t.Fatalf("event %d was served, never queued and in no recorded gap (gaps %+v)", ev.ID, gaps)
		}
	}
	for id := range q {
		require.True(t, all[id], "queued event %d was never served", id)
	}
	return served, queued, inGaps
}

// runUntilCaughtUp runs the poller while the stream publishes for d, then
// until it has taken the last event served (obey mode: up to a minute
// later), and stops it.
func runUntilCaughtUp(t testing.TB, b testBundle, p *Poller, st *githubtest.Stream, d time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	start := time.Now()
	time.Sleep(d)
	st.Stop()
	last := st.NextID() - 1
	deadline := time.Now().Add(75 * time.Second)
	for time.Now().Before(deadline) {
		var got int64
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT COALESCE(max(last_event_id), 0) FROM crawl_feeds`).Scan(&got))
		if got >= last {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the poller did not reach event %d", last)
	return 0
}

// seed puts one event on the timeline and polls it, so every later event
// is owed (a first poll owes nothing older than what it finds).
func seed(t testing.TB, b testBundle, p *Poller, id int64) {
	t.Helper()
	b.gh.Publish(githubtest.CommentEvent(id, "octo/app", "u", "seed", time.Now()))
	res, err := p.PollOnce(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, res.Events)
}

// TestPollerPageHoles: when more than two pages of events arrive between
// the page-1 and page-2 requests, page 2 starts newer than page 1 ended.
// The ids between them are recorded as a gap, like the ones between polls.
func TestPollerPageHoles(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx := context.Background()
	p := newTestPoller(t, b)
	b.gh.Publish(comments(1, 100)...)
	_, err := p.PollOnce(ctx)
	require.NoError(t, err)
	b.gh.Publish(comments(101, 250)...)
	var once sync.Once
	b.gh.OnTimelineRequest(func(r *http.Request) {
		if r.URL.Query().Get("page") == "2" {
			once.Do(func() { b.gh.PublishTo(githubtest.PublicEvents, comments(251, 600)...) })
		}
	})
	// Page 1: 151–250 (101–150 still below); page 2, after 350 more: 401–500;
	// page 3: 301–400. 101–150 and 251–300 have scrolled away unseen.
	res, err := p.PollOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, PollResult{Events: 300, Gap: true, Gaps: 2, Missed: 100, Interval: time.Minute, Pages: 3, Requests: 4}, res,
		"4 charged requests: three pages and page 1 again, to rule out a still timeline")
	gaps := recordedGaps(t, b)
	require.Len(t, gaps, 2)
	require.Equal(t, []int64{100, 151, 50, 250, 301, 50}, []int64{gaps[0].AfterEventID, gaps[0].BeforeEventID, gaps[0].EstimatedMissed,
		gaps[1].AfterEventID, gaps[1].BeforeEventID, gaps[1].EstimatedMissed})
	// The next poll takes 501–600 from where the last ended: nothing more missed.
	b.gh.OnTimelineRequest(nil)
	res, err = p.PollOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 100, res.Events)
	require.False(t, res.Gap)
	served, queued, inGaps := requireAccounted(t, b, 0)
	require.Equal(t, []int{600, 500, 100}, []int{served, queued, inGaps})
	h, err := NewFeeds(b.pool).Health(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, int64(2), h.Feeds[0].Gaps)
	require.Equal(t, int64(100), h.Feeds[0].MissedEstimate)
	require.Len(t, h.Feeds[0].RecentGaps, 2)
}

// TestPollerSparseIDsStillTimeline: on GitHub ids are sparse, so adjacent
// pages read from a timeline that did not move share no event. Page 1 asked
// again with its ETag (a free 304) proves it, and no gap is recorded.
func TestPollerSparseIDsStillTimeline(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx := context.Background()
	p := newTestPoller(t, b)
	at := time.Now()
	b.gh.Publish(githubtest.CommentEvent(3, "octo/app", "u", "x", at))
	_, err := p.PollOnce(ctx)
	require.NoError(t, err)
	var evs []json.RawMessage
	for i := int64(2); i <= 251; i++ {
		evs = append(evs, githubtest.CommentEvent(3*i, "octo/app", "u", "x", at))
	}
	b.gh.Publish(evs...)
	before := b.gh.NotModified()
	res, err := p.PollOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 250, res.Events)
	require.Equal(t, 3, res.Pages)
	require.False(t, res.Gap, "%+v", res)
	require.Equal(t, before+1, b.gh.NotModified())
	require.Empty(t, recordedGaps(t, b))
}

// TestPollerShiftingPagesAccounted runs the adaptive poller against a
// stream far faster than the window (2,000 events/s, 60 ms per request, so
// pages shift by ~120 events between requests): nothing is queued twice and
// every event served is either queued or inside a recorded gap.
func TestPollerShiftingPagesAccounted(t *testing.T) {
	t.Parallel()
	b := streamBundle(t, 20)
	p := newModePoller(t, b, PollerConfig{})
	seed(t, b, p, 39_999_999_999)
	b.gh.SetLatency(60 * time.Millisecond)
	st, err := b.gh.StartStream(githubtest.StreamOpts{Rate: 2000})
	require.NoError(t, err)
	runUntilCaughtUp(t, b, p, st, 1500*time.Millisecond)
	served, queued, inGaps := requireAccounted(t, b, 39_999_999_999)
	t.Logf("served %d, queued %d, in recorded gaps %d", served, queued, inGaps)
	require.Positive(t, inGaps, "2,000 events/s outruns a 300-event window: gaps must show")
}

// TestPollerShiftedPagesDeduplicated: 30 events arrive between the page-1
// and page-2 requests, so page 2 starts with the last 30 of page 1. They are
// queued once, counted as dropped duplicates, and nothing is missed.
func TestPollerShiftedPagesDeduplicated(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx := context.Background()
	p := newTestPoller(t, b)
	b.gh.Publish(comments(1, 10)...)
	_, err := p.PollOnce(ctx)
	require.NoError(t, err)
	b.gh.Publish(comments(11, 260)...)
	var once sync.Once
	b.gh.OnTimelineRequest(func(r *http.Request) {
		if r.URL.Query().Get("page") == "2" {
			once.Do(func() { b.gh.PublishTo(githubtest.PublicEvents, comments(261, 290)...) })
		}
	})
	// Page 1: 161–260; page 2 (shifted by 30): 91–190; page 3: 1–90.
	res, err := p.PollOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 250, res.Events)
	require.Equal(t, 30, res.Duplicates)
	require.False(t, res.Gap)
	require.Equal(t, map[string]float64{"feed=github:events,": 30}, gatherCounter(t, p.m.dups))
	b.gh.OnTimelineRequest(nil)
	res, err = p.PollOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 30, res.Events)
	served, queued, inGaps := requireAccounted(t, b, 0)
	require.Equal(t, []int{290, 290, 0}, []int{served, queued, inGaps})
}

// TestPollerAdaptiveCoverage: at GitHub's rate (80 events/s) with GitHub's
// X-Poll-Interval of 60 s, the adaptive poller sees at least 99.5% of the
// stream live, within its share of the token budget.
func TestPollerAdaptiveCoverage(t *testing.T) {
	t.Parallel()
	b := streamBundle(t, 20)
	p := newModePoller(t, b, PollerConfig{})
	seed(t, b, p, 39_999_999_999)
	st, err := b.gh.StartStream(githubtest.StreamOpts{Rate: 80})
	require.NoError(t, err)
	elapsed := runUntilCaughtUp(t, b, p, st, 4*time.Second)
	served, queued, _ := requireAccounted(t, b, 39_999_999_999)
	require.Positive(t, served)
	require.GreaterOrEqual(t, float64(queued)/float64(served), 0.995, "live coverage %d/%d", queued, served)
	t.Logf("live coverage %d/%d in %v", queued, served, elapsed.Round(time.Millisecond))
	// The poll budget: 15% of 20 × 5,000 an hour, 42 at once.
	charged := 0
	for _, u := range b.gh.Usage() {
		charged += u.Charged
	}
	allowed := PollBudgetShareDefault*20*5000/3600*(elapsed.Seconds()+1) + PollBudgetShareDefault*20*5000/360
	require.LessOrEqual(t, float64(charged), allowed, "charged requests over the polling budget")
	require.Zero(t, b.gh.OverBudget())
}

// TestPollerBudgetHoldsBack: with two tokens the polling budget (1,500 an
// hour, 5 at once) cannot poll 80 events/s at the adaptive pace: the poller
// stays within it, reading more pages per poll, and accounts for every
// event (queued or in a recorded gap).
func TestPollerBudgetHoldsBack(t *testing.T) {
	t.Parallel()
	b := streamBundle(t, 2)
	p := newModePoller(t, b, PollerConfig{})
	seed(t, b, p, 39_999_999_999)
	st, err := b.gh.StartStream(githubtest.StreamOpts{Rate: 80})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx) })
	time.Sleep(3 * time.Second)
	st.Stop()
	cancel()
	wg.Wait()
	charged := 0
	for _, u := range b.gh.Usage() {
		charged += u.Charged
	}
	// The seed poll, then at most 5 at once plus 0.42/s (a poll may
	// overdraw by its last pages).
	require.LessOrEqual(t, charged, 1+5+2+2, "charged requests over the polling budget")
	served, queued, inGaps := requireAccounted(t, b, 39_999_999_999)
	t.Logf("served %d, queued %d, in recorded gaps %d, %d charged requests", served, queued, inGaps, charged)
}

// TestPollerObeyMode follows X-Poll-Interval, measured from each poll's
// start: never sooner, and not much later.
func TestPollerObeyMode(t *testing.T) {
	t.Parallel()
	b := streamBundle(t, 4)
	b.gh.SetPollInterval(1)
	var mu sync.Mutex
	var polls []time.Time
	b.gh.OnTimelineRequest(func(r *http.Request) {
		if r.URL.Query().Get("page") == "1" {
			mu.Lock()
			polls = append(polls, time.Now())
			mu.Unlock()
		}
	})
	p := newModePoller(t, b, PollerConfig{Mode: PollObey})
	st, err := b.gh.StartStream(githubtest.StreamOpts{Rate: 20})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx) })
	time.Sleep(3500 * time.Millisecond)
	cancel()
	wg.Wait()
	st.Stop()
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(polls), 2)
	for i := 1; i < len(polls); i++ {
		d := polls[i].Sub(polls[i-1])
		require.GreaterOrEqual(t, d, 950*time.Millisecond, "poll %d came %v after the one before: sooner than X-Poll-Interval", i, d)
		require.Less(t, d, 2500*time.Millisecond, "poll %d came %v after the one before", i, d)
	}
	// One page a poll: 20 events a second fit in page 1.
	require.Equal(t, len(polls), b.gh.Requests("/events"))
}

// TestPollerBacksOff: a failing feed is retried after 1 s, 2 s, 4 s, and
// at once on the usual cadence after a success.
func TestPollerBacksOff(t *testing.T) {
	t.Parallel()
	b := streamBundle(t, 2)
	p := newModePoller(t, b, PollerConfig{})
	ctx := context.Background()
	broken := Feed{Name: "github:repo:gone/away", Path: "nowhere/events"}
	var got []time.Duration
	for range 3 {
		_, err := p.pollDue(ctx, []Feed{broken})
		require.NoError(t, err)
		p.mu.Lock()
		st := p.states[broken.Name]
		got = append(got, st.next.Sub(st.lastStart))
		st.next = time.Time{} // due again now
		p.mu.Unlock()
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, got)
	require.Equal(t, 3, b.gh.Requests("/nowhere/events"))
	h, err := NewFeeds(b.pool).Health(ctx, 0)
	require.NoError(t, err)
	require.Len(t, h.Feeds, 1)
	require.Contains(t, h.Feeds[0].LastError, "404")
}

// TestPollerRateLimited403: another user of the same tokens spent them;
// GitHub answers 403 with x-ratelimit-remaining: 0. The poll fails with
// ErrRateLimited, the tokens are parked until their reset, and the feed is
// not polled again before then.
func TestPollerRateLimited403(t *testing.T) {
	t.Parallel()
	b := streamBundle(t, 2)
	b.gh.SetRateLimit(3)
	p := newModePoller(t, b, PollerConfig{})
	ctx := context.Background()
	b.gh.Publish(comments(1, 10)...)
	_, err := p.pollDue(ctx, []Feed{p.feed})
	require.NoError(t, err)
	// Spend both tokens' budgets behind the poller's back.
	for _, tok := range tokenNames(2) {
		for {
			req, _ := http.NewRequest(http.MethodGet, b.gh.URL+"/events", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			if resp.StatusCode == http.StatusForbidden {
				break
			}
		}
	}
	b.gh.Publish(comments(11, 20)...)
	p.mu.Lock()
	p.states[FeedPublic].next = time.Time{}
	p.mu.Unlock()
	_, err = p.pollDue(ctx, []Feed{p.feed})
	require.NoError(t, err)
	p.mu.Lock()
	st := p.states[FeedPublic]
	wait := st.next.Sub(st.lastStart)
	p.mu.Unlock()
	require.Greater(t, wait, 50*time.Minute, "the feed must wait for the tokens' reset")
	for _, u := range b.gh.Usage() {
		require.LessOrEqual(t, u.Limited, 2, "a parked token was used again")
	}
	before := b.gh.Requests("/events")
	_, err = p.pollDue(ctx, []Feed{p.feed})
	require.NoError(t, err)
	require.Equal(t, before, b.gh.Requests("/events"))
	h, err := NewFeeds(b.pool).Health(ctx, 0)
	require.NoError(t, err)
	require.Contains(t, h.Feeds[0].LastError, "out of budget")
	require.Len(t, queuedIDs(t, b), 10)
}

// gatherCounter reads a counter vector's values by label set.
func gatherCounter(t testing.TB, c *prometheus.CounterVec) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	c.Collect(ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		require.NoError(t, m.Write(&d))
		key := ""
		for _, l := range d.GetLabel() {
			key += l.GetName() + "=" + l.GetValue() + ","
		}
		out[key] = d.GetCounter().GetValue()
	}
	return out
}
