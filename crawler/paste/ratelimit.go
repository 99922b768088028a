package paste

import (
	"context"
	"errors"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/leakwatch/leakwatch/crawler/github"
)

// rateLimitedUntil reports whether err says GitHub (or the shared token
// pool) wants no request before some time, and which.
func rateLimitedUntil(err error) (time.Time, bool) {
	var pool *github.RateLimitedError
	var rle *gh.RateLimitError
	var ale *gh.AbuseRateLimitError
	switch {
	case errors.As(err, &pool):
		return pool.Until, true
	case errors.As(err, &rle):
		return rle.Rate.Reset.Time, true
	case errors.As(err, &ale):
		d := time.Minute
		if ale.RetryAfter != nil {
			d = *ale.RetryAfter
		}
		return time.Now().Add(d), true
	}
	return time.Time{}, false
}

// pacer spaces calls at least every apart, across goroutines.
type pacer struct {
	mu    sync.Mutex
	every time.Duration
	next  time.Time
}

// wait blocks until this caller's turn, or ctx ends. A turn further away
// than maxWait is not taken: wait returns at once how long until the next
// free turn, for the caller to come back then.
func (p *pacer) wait(ctx context.Context, maxWait time.Duration) time.Duration {
	p.mu.Lock()
	now := time.Now()
	turn := now
	if p.next.After(now) {
		turn = p.next
	}
	if d := turn.Sub(now); d > maxWait {
		p.mu.Unlock()
		return d
	}
	p.next = turn.Add(p.every)
	p.mu.Unlock()
	if d := turn.Sub(now); d > 0 {
		sleep(ctx, d)
	}
	return 0
}
