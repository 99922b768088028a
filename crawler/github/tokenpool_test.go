package github

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
)

// fakeClock is an injectable clock; Sleep advances it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.Advance(d)
	return nil
}

type poolBundle struct {
	gh     *githubtest.Server
	client *Client
	clock  *fakeClock
}

func setupPool(t *testing.T, tokens []string, limit int) poolBundle {
	t.Helper()
	srv := githubtest.NewServer()
	t.Cleanup(srv.Close)
	if limit > 0 {
		srv.SetRateLimit(limit)
	}
	srv.AddRepo("octo/app", "main")
	clock := &fakeClock{t: time.Now()}
	c, err := NewClientWithConfig(ClientConfig{BaseURL: srv.APIURL(), Tokens: tokens, Now: clock.Now, Sleep: clock.Sleep, MaxWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return poolBundle{gh: srv, client: c, clock: clock}
}

func (b poolBundle) get(t *testing.T) error {
	t.Helper()
	_, _, err := b.client.Repositories.Get(context.Background(), "octo", "app")
	return err
}

func rateLimited(t *testing.T, err error) *RateLimitedError {
	t.Helper()
	var rl *RateLimitedError
	if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err = %v, want *RateLimitedError", err)
	}
	return rl
}

func TestTokenPoolNeverExceedsBudget(t *testing.T) {
	t.Parallel()
	b := setupPool(t, []string{"tok-a", "tok-b", "tok-c"}, 5)
	for i := range 15 {
		if err := b.get(t); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	rl := rateLimited(t, b.get(t))
	if !rl.Until.After(b.clock.Now().Add(50 * time.Minute)) {
		t.Errorf("parked until %v, want the reset about an hour away", rl.Until)
	}
	if n := b.gh.OverBudget(); n != 0 {
		t.Fatalf("%d requests reached GitHub on an exhausted token", n)
	}
	for tok, n := range b.gh.RequestsByToken() {
		if n != 5 {
			t.Errorf("token %s sent %d requests, want 5 (spread by remaining budget)", tok, n)
		}
	}
	for _, bud := range b.client.Tokens.Budgets() {
		if bud.Remaining != 0 || bud.Limit != 5 || bud.ID == "tok-a" {
			t.Errorf("budget %+v: want limit 5, none left, and a hashed id", bud)
		}
	}
}

func TestTokenPoolRetryAfterParksThatToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
	}{{"429", http.StatusTooManyRequests}, {"403", http.StatusForbidden}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupPool(t, []string{"only"}, 0)
			start := b.clock.Now()
			b.gh.InjectSecondaryLimit(tt.status, 30)
			rl := rateLimited(t, b.get(t))
			if want := start.Add(30 * time.Second); !rl.Until.Equal(want) {
				t.Fatalf("parked until %v, want %v (retry-after 30s)", rl.Until, want)
			}
			if got := b.gh.RequestsByToken()["only"]; got != 1 {
				t.Fatalf("%d requests sent while parked, want 1", got)
			}
			b.clock.Advance(31 * time.Second)
			if err := b.get(t); err != nil {
				t.Fatalf("after retry-after: %v", err)
			}
		})
	}
}

func TestTokenPoolRetriesOnAnotherToken(t *testing.T) {
	t.Parallel()
	b := setupPool(t, []string{"one", "two"}, 0)
	b.gh.InjectSecondaryLimit(http.StatusTooManyRequests, 60)
	if err := b.get(t); err != nil {
		t.Fatalf("a 429 on one token should be retried on the other: %v", err)
	}
	parked := 0
	for _, bud := range b.client.Tokens.Budgets() {
		if bud.ParkedUntil.After(b.clock.Now()) {
			parked++
			if bud.ParkReason != "retry-after" {
				t.Errorf("park reason %q", bud.ParkReason)
			}
		}
	}
	if parked != 1 {
		t.Fatalf("%d tokens parked, want 1", parked)
	}
}

func TestTokenPoolSecondaryLimitBacksOff(t *testing.T) {
	t.Parallel()
	b := setupPool(t, []string{"only"}, 0)
	var prev time.Duration
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		start := b.clock.Now()
		b.gh.InjectSecondaryLimit(http.StatusForbidden, -1)
		rl := rateLimited(t, b.get(t))
		got := rl.Until.Sub(start)
		if got < time.Minute || got != want || got <= prev {
			t.Fatalf("secondary limit %d without headers parked %v, want %v (≥ 1 min, doubling)", i+1, got, want)
		}
		prev = got
		b.clock.Advance(got)
	}
	// Success resets the backoff.
	if err := b.get(t); err != nil {
		t.Fatal(err)
	}
	start := b.clock.Now()
	b.gh.InjectSecondaryLimit(http.StatusForbidden, -1)
	if rl := rateLimited(t, b.get(t)); rl.Until.Sub(start) != time.Minute {
		t.Fatalf("after a success the backoff should restart at 1 min, got %v", rl.Until.Sub(start))
	}
}

func TestTokenPoolWaitsShortParks(t *testing.T) {
	t.Parallel()
	b := setupPool(t, []string{"only"}, 0)
	b.gh.InjectSecondaryLimit(http.StatusTooManyRequests, 1)
	start := b.clock.Now()
	// MaxWait is 1s: a 1s retry-after is waited out (on the fake clock).
	if err := b.get(t); err != nil {
		t.Fatalf("short retry-after should be waited out: %v", err)
	}
	if got := b.clock.Now().Sub(start); got != time.Second {
		t.Fatalf("waited %v, want 1s", got)
	}
}

func TestTokenPoolUnauthenticated(t *testing.T) {
	t.Parallel()
	b := setupPool(t, nil, 0)
	if b.client.Tokens.Authenticated() {
		t.Fatal("no tokens but Authenticated")
	}
	for range githubtest.AnonymousLimit {
		if err := b.get(t); err != nil {
			t.Fatal(err)
		}
	}
	rateLimited(t, b.get(t))
	if b.gh.OverBudget() != 0 || b.gh.RequestsByToken()[""] != githubtest.AnonymousLimit {
		t.Fatalf("requests %v, over budget %d", b.gh.RequestsByToken(), b.gh.OverBudget())
	}
}

func TestTokenPoolNotModifiedIsFree(t *testing.T) {
	t.Parallel()
	b := setupPool(t, []string{"only"}, 3)
	ctx := context.Background()
	req, err := b.client.NewRequest(http.MethodGet, "events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.client.Do(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	etag := resp.Header.Get("ETag")
	for range 5 {
		req, _ := b.client.NewRequest(http.MethodGet, "events", nil)
		req.Header.Set("If-None-Match", etag)
		resp, _ := b.client.Do(ctx, req, nil)
		if resp == nil || resp.StatusCode != http.StatusNotModified {
			t.Fatalf("want 304, got %v", resp)
		}
	}
	if got := b.client.Tokens.Budgets()[0].Remaining; got != 2 {
		t.Fatalf("remaining %d after one 200 and five 304s on a budget of 3, want 2", got)
	}
}

// TestTokenPoolUnknownBudgetOneAtATime: a token another process has nearly
// spent is not overspent by a fresh pool's concurrent requests: until
// GitHub's first answer tells the budget, the token carries one request at
// a time.
func TestTokenPoolUnknownBudgetOneAtATime(t *testing.T) {
	t.Parallel()
	b := setupPool(t, []string{"shared"}, 4)
	for range 3 {
		if err := b.get(t); err != nil {
			t.Fatal(err)
		}
	}
	// A second process starts with the same token: one request left.
	c, err := NewClientWithConfig(ClientConfig{BaseURL: b.gh.APIURL(), Tokens: []string{"shared"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, limited := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := c.Repositories.Get(context.Background(), "octo", "app")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrRateLimited):
				limited++
			default:
				t.Errorf("request: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := b.gh.OverBudget(); n != 0 {
		t.Fatalf("%d requests reached GitHub on an exhausted token", n)
	}
	if ok != 1 || limited != 7 {
		t.Fatalf("%d answered, %d rate limited; want 1 and 7", ok, limited)
	}
}
