package github

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCoverage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		lastID int64
		spans  []span
		want   []hole
	}{
		{"page 1 reaches the checkpoint", 100, []span{{90, 189}}, nil},
		{"page 1 touches the checkpoint (dense ids)", 100, []span{{101, 200}}, nil},
		{"between polls", 100, []span{{201, 300}}, []hole{{100, 201}}},
		{"pages overlap (shifted) down to the checkpoint", 100, []span{{151, 250}, {120, 219}, {95, 150}}, nil},
		{"page 2 newer than page 1", 100, []span{{151, 250}, {401, 500}, {301, 400}}, []hole{{100, 151}, {250, 301}}},
		{"first poll owes nothing older", 0, []span{{401, 500}, {201, 300}}, []hole{{300, 401}}},
		{"spans under the checkpoint", 500, []span{{401, 500}}, nil},
		{"nothing read", 100, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, coverage(tc.lastID, tc.spans))
		})
	}
}

func TestRecentIDsBounded(t *testing.T) {
	t.Parallel()
	r := newRecentIDs(10)
	require.True(t, r.seen(10), "ids up to the checkpoint count as seen")
	require.False(t, r.seen(11))
	for id := int64(11); id < 11+recentCap+100; id++ {
		r.add(id)
	}
	require.Len(t, r.set, recentCap)
	require.Equal(t, int64(110), r.floor, "forgotten ids stay seen through the floor")
	require.True(t, r.seen(50))
	require.True(t, r.seen(11+recentCap+99))
	require.False(t, r.seen(11+recentCap+100))
}

func TestCadence(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	fail := errors.New("boom")
	t.Run("failures back off from 1s, doubling, to a cap", func(t *testing.T) {
		t.Parallel()
		c := cadence{mode: PollAdaptive, min: publicMinPeriod, max: publicMaxPeriod}
		st := &feedState{}
		var got []time.Duration
		for i := range 9 {
			got = append(got, c.after(st, t0.Add(time.Duration(i)*time.Minute), PollResult{}, fail, time.Time{}))
		}
		require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
			32 * time.Second, time.Minute, time.Minute, time.Minute}, got)
		// A success starts over.
		c.after(st, t0.Add(time.Hour), PollResult{Events: 10}, nil, time.Time{})
		require.Equal(t, time.Second, c.after(st, t0.Add(time.Hour+time.Second), PollResult{}, fail, time.Time{}))
	})
	t.Run("a rate limit waits until it lifts", func(t *testing.T) {
		t.Parallel()
		c := cadence{mode: PollAdaptive, min: publicMinPeriod, max: publicMaxPeriod}
		require.Equal(t, 10*time.Minute, c.after(&feedState{}, t0, PollResult{}, ErrRateLimited, t0.Add(10*time.Minute)))
	})
	t.Run("obey follows X-Poll-Interval", func(t *testing.T) {
		t.Parallel()
		c := cadence{mode: PollObey}
		st := &feedState{}
		require.Equal(t, time.Minute, c.after(st, t0, PollResult{Interval: time.Minute, Events: 300}, nil, time.Time{}))
		require.Equal(t, 7*time.Second, c.after(st, t0, PollResult{Interval: 7 * time.Second, NotModified: true}, nil, time.Time{}))
		c.max = time.Second // LEAKWATCH_GITHUB_MIN_POLL_INTERVAL
		require.Equal(t, time.Second, c.after(st, t0, PollResult{Interval: time.Minute}, nil, time.Time{}))
	})
	t.Run("adaptive follows the stream's rate", func(t *testing.T) {
		t.Parallel()
		c := cadence{mode: PollAdaptive, min: publicMinPeriod, max: publicMaxPeriod}
		st := &feedState{}
		at := t0
		var d time.Duration
		for range 20 {
			// 80 events/s: each poll finds 80 × the last period.
			n := 80
			if d > 0 {
				n = int(80 * d.Seconds())
			}
			d = c.after(st, at, PollResult{Events: n, Pages: 1}, nil, time.Time{})
			at = at.Add(max(d, time.Second/4))
		}
		// pageFill × 100 / 80 = 750 ms: 60 new events on page 1, 40 overlapping.
		require.InDelta(t, 750*time.Millisecond, d, float64(50*time.Millisecond))
		// The overlap is gone (a gap): at once faster.
		d2 := c.after(st, at, PollResult{Events: 100, Missed: 200, Gap: true, Pages: 3}, nil, time.Time{})
		require.LessOrEqual(t, d2, d/2)
		// 304s: slower, up to the cap.
		for range 30 {
			d = c.after(st, at, PollResult{NotModified: true}, nil, time.Time{})
		}
		require.Equal(t, publicMaxPeriod, d)
	})
}

func TestPollBudget(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	// 20 tokens × 5,000 × 15% = 15,000 requests/hour = 4.17/s, 41 at once.
	b := newPollBudget(func() float64 { return 15_000 }, t0)
	require.Zero(t, b.wait(t0))
	b.spend(t0, 42)
	w := b.wait(t0)
	require.Greater(t, w, time.Duration(0))
	require.InDelta(t, 0.32, w.Seconds(), 0.02, "41.7 at once; after 42 the next request waits (1+0.33)/4.17 s")
	require.Zero(t, b.wait(t0.Add(w)))
	// Refills never exceed the burst.
	require.Zero(t, b.wait(t0.Add(time.Hour)))
	b.spend(t0.Add(time.Hour), 41)
	require.Greater(t, b.wait(t0.Add(time.Hour)), time.Duration(0))
}

// TestPollerLogsPlan: at start the poller says how much of the stream its
// tokens' polling budget covers, and warns when it is not the whole stream.
func TestPollerLogsPlan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tokens int
		mode   string
		want   string
	}{
		{20, PollAdaptive, `level=INFO msg="GitHub polling plan" mode=adaptive tokens=20 poll_budget_per_hour=15000 budget_share=0.15 coverable_events_per_second=375`},
		{2, PollAdaptive, `level=WARN msg="the GitHub tokens' polling budget covers less than GitHub's public stream`},
		{20, PollObey, `level=WARN msg="polling GitHub's public events at X-Poll-Interval (60 s)`},
	} {
		var buf bytes.Buffer
		c, err := NewClientWithConfig(ClientConfig{BaseURL: "http://127.0.0.1:1/", Tokens: tokenNames(tc.tokens)})
		require.NoError(t, err)
		p := NewPoller(PollerConfig{Client: c, Mode: tc.mode, Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))})
		p.logPlan()
		require.Contains(t, buf.String(), tc.want)
	}
}
