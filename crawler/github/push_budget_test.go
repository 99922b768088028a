package github

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// compareLog records, in order, the repositories whose compare was sent.
type compareLog struct {
	next http.RoundTripper
	mu   sync.Mutex
	log  []string
}

func (c *compareLog) RoundTrip(r *http.Request) (*http.Response, error) {
	if i := strings.Index(r.URL.Path, "/compare/"); i > 0 {
		c.mu.Lock()
		c.log = append(c.log, strings.TrimPrefix(r.URL.Path[:i], "/repos/"))
		c.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

func (c *compareLog) repos() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// TestPushBudgetQueue runs the events and push workers on River against a
// fake GitHub whose two tokens have 4 requests per 2-second window. No
// token goes over its budget (the fake answers 403, counted, when one
// does); pushes that find no token wait for the reset without using up
// attempts, then run newest first, forks and bots after everyone else; feed
// health reports the push coverage meanwhile and at the end.
func TestPushBudgetQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, FetchConfig{})
	b.gh.SetRateLimit(4)
	b.gh.SetRateWindow(2 * time.Second)
	log := &compareLog{next: http.DefaultTransport}
	client, err := NewClientWithConfig(ClientConfig{BaseURL: b.gh.APIURL(), RawURL: b.gh.RawURL(), Tokens: []string{"q1", "q2"},
		Transport: log, MaxWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cov := NewPushCoverage(b.pool, nil)
	workers := river.NewWorkers()
	AddWorkers(workers, NewEventsWorker(b.pool, b.pipeline, nil, b.logger).WithPushCoverage(cov))
	AddFetchWorkers(workers, NewFetcher(client, b.pipeline, FetchConfig{}, nil, b.logger).WithPushCoverage(cov))
	// One crawl worker: the order in which pushes are fetched is River's.
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger, Workers: workers, Scan: 1, Crawl: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })

	// 20 pushes a second apart, oldest first: 14 by people to their own
	// repositories, 3 to forks (known from ForkEvents), 3 by a bot.
	start := time.Now().Add(-30 * time.Second).UTC().Truncate(time.Second)
	kind := map[string]string{}
	at := map[string]time.Time{}
	var events []json.RawMessage
	for f := range 3 {
		fork := fmt.Sprintf("forks/f%d", f)
		events = append(events, githubtest.Event(int64(f+1), "ForkEvent", fmt.Sprintf("up/u%d", f), "alice", start,
			map[string]any{"forkee": map[string]any{"full_name": fork, "fork": true}}))
	}
	for i := range 20 {
		repo, actor, k := fmt.Sprintf("own/r%02d", i), "dev", "own"
		switch i {
		case 2, 9, 15:
			repo, k = fmt.Sprintf("forks/f%d", map[int]int{2: 0, 9: 1, 15: 2}[i]), "later"
		case 5, 12, 18:
			actor, k = "renovate[bot]", "later"
		}
		if k == "later" && actor != "dev" {
			repo = fmt.Sprintf("bots/r%02d", i)
		}
		base, head := githubtest.SHA(repo+":base"), githubtest.SHA(repo+":head")
		b.gh.AddCommits(repo, githubtest.Commit{SHA: base, Message: "initial", Date: start},
			githubtest.Commit{SHA: head, Parents: []string{base}, Message: "change", Date: start,
				Files: []githubtest.File{{Path: "a.txt", Patch: patchAdding(1, "harmless")}}})
		b.gh.SetBranch(repo, "main", head)
		evAt := start.Add(time.Duration(i+1) * time.Second)
		kind[repo], at[repo] = k, evAt
		events = append(events, githubtest.PushEvent(int64(100+i), repo, actor, "refs/heads/main", base, head, evAt))
	}
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := queueEventsTx(ctx, tx, rc, "test", events); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	feeds := NewFeeds(b.pool)
	coverage := func() PushHour {
		t.Helper()
		h, err := feeds.Health(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var sum PushHour
		for _, ph := range h.PushCoverage {
			sum.Seen += ph.Seen
			sum.Fetched += ph.Fetched
		}
		sum.Ratio = ratio(sum.Fetched, sum.Seen)
		return sum
	}
	sawPartial := false
	deadline := time.Now().Add(45 * time.Second)
	for {
		c := coverage()
		if c.Seen == 20 && c.Fetched > 0 && c.Fetched < 20 {
			sawPartial = true
			if want := float64(c.Fetched) / 20; c.Ratio != want {
				t.Fatalf("coverage ratio %v for %d of 20", c.Ratio, c.Fetched)
			}
		}
		if c.Fetched == 20 {
			if c.Seen != 20 || c.Ratio != 1 {
				t.Fatalf("coverage at the end: %+v", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 20 pushes fetched (coverage %+v); compares %v", c.Fetched, c, log.repos())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sawPartial {
		t.Error("feed health never showed partial push coverage while tokens were spent")
	}
	if n := b.gh.OverBudget(); n != 0 {
		t.Fatalf("%d requests sent on a spent token", n)
	}
	order := log.repos()
	if len(order) != 20 {
		t.Fatalf("%d compares for 20 pushes: %v", len(order), order)
	}
	// Forks and bots after everyone else's pushes.
	lastOwn, firstLater := -1, len(order)
	for i, r := range order {
		if kind[r] == "own" {
			lastOwn = i
		} else if i < firstLater {
			firstLater = i
		}
	}
	if lastOwn > firstLater {
		t.Errorf("a fork or bot push ran before a person's: %v", order)
	}
	// The first window goes to the oldest pushes River had queued; from
	// then on queued pushes run newest first within their priority.
	window := 8
	for i := window + 1; i < len(order); i++ {
		prev, cur := order[i-1], order[i]
		if kind[prev] == kind[cur] && !at[cur].Before(at[prev]) {
			t.Errorf("queued push %s (%s) ran after %s (%s): not newest first; order %v", cur, at[cur].Format(time.TimeOnly), prev, at[prev].Format(time.TimeOnly), order)
		}
	}
	// Nothing failed or burnt attempts: every push job completed on its
	// first attempt.
	var failed, attempts int
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// River records completions asynchronously, after Work returns.
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state <> 'completed'), coalesce(max(attempt), 0)
			FROM river_job WHERE kind = 'github_push'`).Scan(&failed, &attempts); err != nil {
			t.Fatal(err)
		}
		if failed == 0 || time.Now().After(end) {
			break
		}
	}
	if failed != 0 || attempts != 1 {
		t.Errorf("push jobs: %d not completed, max attempt %d (want 1: waiting for budget is a snooze)", failed, attempts)
	}
	t.Logf("compare order: %v", order)
}
