package github

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

func newTestPoller(t *testing.T, b testBundle) *Poller {
	t.Helper()
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger})
	if err != nil {
		t.Fatal(err)
	}
	return NewPoller(PollerConfig{Client: b.client, Pool: b.pool, River: rc, Logger: b.logger})
}

func comments(from, to int64) []json.RawMessage {
	var out []json.RawMessage
	for id := from; id <= to; id++ {
		out = append(out, githubtest.CommentEvent(id, "octo/app", "u", "hello", time.Now().Add(-time.Minute)))
	}
	return out
}

// queuedEvents counts events handed to River (kept in batches until their
// jobs end) and distinct event ids.
func queuedEvents(t *testing.T, b testBundle) (total, distinct int) {
	t.Helper()
	err := b.pool.QueryRow(context.Background(), `
		SELECT count(*), count(DISTINCT e->>'id')
		FROM river_job j JOIN github_event_batches b ON b.id = (j.args->>'batch')::bigint, json_array_elements(b.events) e
		WHERE j.kind = 'github_events'`).Scan(&total, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	return total, distinct
}

func TestPollerGapIsRecorded(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx := context.Background()
	p := newTestPoller(t, b)
	b.gh.Publish(comments(1, 100)...)
	res, err := p.PollOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 100 || res.Gap {
		t.Fatalf("first poll %+v, want 100 events and no gap", res)
	}
	// 400 more events between polls: the timeline keeps the newest 300, so
	// events 101–200 are gone.
	b.gh.Publish(comments(101, 500)...)
	res, err = p.PollOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 300 || !res.Gap || res.Missed != 100 {
		t.Fatalf("second poll %+v, want 300 events and a gap of 100", res)
	}
	h, err := NewFeeds(b.pool).Health(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Feeds) != 1 {
		t.Fatalf("health %+v", h)
	}
	f := h.Feeds[0]
	if f.Gaps != 1 || f.MissedEstimate != 100 || len(f.RecentGaps) != 1 || f.RecentGaps[0].AfterEventID != 100 || f.RecentGaps[0].BeforeEventID != 201 {
		t.Fatalf("feed health %+v", f)
	}
	if f.EventsTotal != 400 || f.LastSuccessAt == nil || f.LagSeconds == nil || *f.LagSeconds < 50 || f.EventsPerMinute != 40 {
		t.Fatalf("feed health %+v: want 400 events, a lag of about a minute, 40 events/min over 10 min", f)
	}
	// A poll that reaches the last event seen is not a gap.
	b.gh.Publish(comments(501, 550)...)
	if res, err = p.PollOnce(ctx); err != nil || res.Gap || res.Events != 50 {
		t.Fatalf("third poll %+v %v", res, err)
	}
}

func TestPollerResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx := context.Background()
	b.gh.SetPollInterval(7)
	b.gh.Publish(comments(1000, 1150)...)
	res, err := newTestPoller(t, b).PollOnce(ctx)
	if err != nil || res.Events != 151 || res.Interval != 7*time.Second {
		t.Fatalf("poll %+v %v: want 151 events and GitHub's 7s interval", res, err)
	}
	// Nothing new: the conditional request comes back 304.
	if res, err = newTestPoller(t, b).PollOnce(ctx); err != nil || !res.NotModified {
		t.Fatalf("poll %+v %v: want 304", res, err)
	}
	if b.gh.NotModified() != 1 {
		t.Fatalf("304s = %d", b.gh.NotModified())
	}
	// A new process (the old one was killed) takes up where it stopped.
	b.gh.Publish(comments(1151, 1160)...)
	res, err = newTestPoller(t, b).PollOnce(ctx)
	if err != nil || res.Events != 10 || res.Gap {
		t.Fatalf("poll after restart %+v %v: want exactly the 10 new events", res, err)
	}
	total, distinct := queuedEvents(t, b)
	if total != 161 || distinct != 161 {
		t.Fatalf("queued %d events (%d distinct), want 161 with no repeats", total, distinct)
	}
}

func TestPollerWatchedFeeds(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx := context.Background()
	var orgID int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM orgs WHERE name = 'acme'`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	feeds := NewFeeds(b.pool)
	for _, tc := range []struct{ kind, target string }{{"org", "acme-corp"}, {"user", "alice"}, {"repo", "acme-corp/api"}} {
		if _, err := feeds.AddWatch(ctx, audit.System, orgID, tc.kind, tc.target); err != nil {
			t.Fatalf("AddWatch %v: %v", tc, err)
		}
	}
	for _, bad := range []struct{ kind, target string }{{"org", "../etc"}, {"org", ".."}, {"repo", "acme/.."}, {"user", ""}, {"team", "x"}} {
		if _, err := feeds.AddWatch(ctx, audit.System, orgID, bad.kind, bad.target); !errors.Is(err, ErrInvalidWatch) {
			t.Fatalf("watch %v: %v, want ErrInvalidWatch", bad, err)
		}
	}
	p := newTestPoller(t, b)
	list, err := p.Feeds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Fatalf("feeds %+v, want the public feed and 3 watched", list)
	}
	b.gh.PublishTo("/orgs/acme-corp/events", comments(1, 5)...)
	b.gh.PublishTo("/users/alice/events/public", comments(10, 12)...)
	if _, err := p.pollDue(ctx, list); err != nil {
		t.Fatal(err)
	}
	h, err := feeds.Health(ctx, orgID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, f := range h.Feeds {
		got[f.Feed] = f.EventsTotal
	}
	if got["github:org:acme-corp"] != 5 || got["github:user:alice"] != 3 || len(h.Feeds) != 4 {
		t.Fatalf("health %+v", h.Feeds)
	}
	if err := SaveBudgets(ctx, b.pool, b.client.Tokens.Budgets()); err != nil {
		t.Fatal(err)
	}
	if h, err = feeds.Health(ctx, orgID); err != nil || len(h.Tokens) != 2 || h.Tokens[0].Requests == 0 {
		t.Fatalf("token budgets %+v %v", h.Tokens, err)
	}
	ws, err := feeds.Watches(ctx, orgID)
	if err != nil || len(ws) != 3 {
		t.Fatalf("watches %+v %v", ws, err)
	}
	if err := feeds.RemoveWatch(ctx, audit.System, orgID, ws[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := feeds.RemoveWatch(ctx, audit.System, orgID+1, ws[1].ID); err == nil {
		t.Fatal("removed another organisation's watch")
	}
}

// TestPollerRateLimited: when every token is parked the poll fails with
// ErrRateLimited (nothing is queued, the checkpoint stays), the feed's
// health shows it, and the leader waits before polling that feed again.
func TestPollerRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx := context.Background()
	p := newTestPoller(t, b)
	b.gh.Publish(comments(1, 10)...)
	// Both tokens hit a secondary limit asking for two minutes.
	b.gh.InjectSecondaryLimit(http.StatusTooManyRequests, 120)
	b.gh.InjectSecondaryLimit(http.StatusForbidden, 120)
	_, err := p.PollOnce(ctx)
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("poll: %v, want ErrRateLimited", err)
	}
	if total, _ := queuedEvents(t, b); total != 0 {
		t.Fatalf("%d events queued by a failed poll", total)
	}
	h, err := NewFeeds(b.pool).Health(ctx, 0)
	if err != nil || len(h.Feeds) != 1 || !strings.Contains(h.Feeds[0].LastError, "out of budget") || h.Feeds[0].LastEventID != 0 {
		t.Fatalf("health %+v %v", h.Feeds, err)
	}
	// The leader's loop meets the limit too, then leaves the feed alone.
	b.gh.InjectSecondaryLimit(http.StatusTooManyRequests, 120)
	b.gh.InjectSecondaryLimit(http.StatusTooManyRequests, 120)
	if _, err := p.pollDue(ctx, []Feed{p.feed}); err != nil {
		t.Fatal(err)
	}
	before := b.gh.Requests("/events")
	for range 3 {
		if _, err := p.pollDue(ctx, []Feed{p.feed}); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.gh.Requests("/events") - before; n != 0 {
		t.Fatalf("%d requests to a rate-limited feed, want none until the tokens are free", n)
	}
}

// TestOnlyOneLeader runs two pollers (two processes) on one database: one
// takes the lock and polls, the other waits; no event is queued twice.
func TestOnlyOneLeader(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger})
	if err != nil {
		t.Fatal(err)
	}
	var ps []*Poller
	for range 2 {
		p := NewPoller(PollerConfig{Client: b.client, Pool: b.pool, River: rc, Logger: b.logger, NoWatches: true, MinInterval: 20 * time.Millisecond})
		ps = append(ps, p)
		go p.Run(ctx)
	}
	b.gh.Publish(comments(1, 40)...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if total, _ := queuedEvents(t, b); total >= 40 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.gh.Publish(comments(41, 60)...)
	time.Sleep(300 * time.Millisecond)
	deadline = time.Now().Add(10 * time.Second)
	for {
		if total, _ := queuedEvents(t, b); total >= 60 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	leading := 0
	for _, p := range ps {
		var m dto.Metric
		if err := p.m.leading.Write(&m); err != nil {
			t.Fatal(err)
		}
		leading += int(m.GetGauge().GetValue())
	}
	if leading != 1 {
		t.Fatalf("%d pollers lead, want exactly 1", leading)
	}
	if total, distinct := queuedEvents(t, b); total != 60 || distinct != 60 {
		t.Fatalf("queued %d events (%d distinct), want 60 once each", total, distinct)
	}
}

// TestPollFailureLoggedOncePerChange: a feed that fails every poll (no
// network) logs one error when it starts failing and one line when it
// recovers, not one per poll.
func TestPollFailureLoggedOncePerChange(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	var down atomic.Bool
	target, err := url.Parse(b.gh.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "upstream unreachable", http.StatusBadGateway)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	client, err := NewClientWithConfig(ClientConfig{BaseURL: front.URL + "/", RawURL: front.URL + "/raw/", Tokens: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncLog
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPoller(PollerConfig{Client: client, Pool: b.pool, River: rc, Logger: slog.New(slog.NewTextHandler(&logs, nil)), NoWatches: true})
	clock := time.Now()
	p.now = func() time.Time { return clock }
	ctx := context.Background()
	b.gh.Publish(comments(1, 3)...)

	down.Store(true)
	for range 4 {
		if _, err := p.pollDue(ctx, []Feed{p.feed}); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(2 * time.Minute) // past the failure backoff
	}
	if n := b.gh.Requests("/events"); n != 0 {
		t.Fatalf("the fake was reached %d times while down", n)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Fatalf("%d error lines for 4 failed polls, want 1:\n%s", n, logs.String())
	}
	down.Store(false)
	for range 2 {
		if _, err := p.pollDue(ctx, []Feed{p.feed}); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(2 * time.Minute)
	}
	if n := strings.Count(logs.String(), "poll recovered"); n != 1 || b.gh.Requests("/events") == 0 {
		t.Fatalf("%d recovery lines, %d polls after recovery:\n%s", n, b.gh.Requests("/events"), logs.String())
	}
	down.Store(true)
	if _, err := p.pollDue(ctx, []Feed{p.feed}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 2 {
		t.Fatalf("a new failure after recovery logged %d errors in all, want 2:\n%s", n, logs.String())
	}
}

// syncLog is a log sink safe for concurrent writers.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
