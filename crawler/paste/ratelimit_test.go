package paste

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler/github"
)

// stubSource fails every fetch with err.
type stubSource struct {
	name string
	err  error
	n    int
}

func (s *stubSource) Name() string                                      { return s.name }
func (s *stubSource) Kind() string                                      { return KindGist }
func (s *stubSource) Interval() time.Duration                           { return time.Minute }
func (s *stubSource) FetchInterval() time.Duration                      { return 0 }
func (s *stubSource) List(context.Context, Checkpoint) (Listing, error) { return Listing{}, nil }
func (s *stubSource) Fetch(context.Context, Item) ([]Part, error) {
	s.n++
	return nil, s.err
}

func TestRateLimitedFetchIsSnoozedNotFailed(t *testing.T) {
	t.Parallel()
	src := &stubSource{name: "gist", err: &github.RateLimitedError{Until: time.Now().Add(10 * time.Minute)}}
	b := setup(t, src)
	if _, err := b.store.Register(b.ctx, src); err != nil {
		t.Fatal(err)
	}
	err := b.work(FetchArgs{Source: "gist", Item: Item{ID: "abc"}}, fetchMaxAttempts)
	var snooze *rivertype.JobSnoozeError
	if !errors.As(err, &snooze) || snooze.Duration < 9*time.Minute {
		t.Fatalf("work = %v, want a snooze until the reset", err)
	}
	if h := b.health(t, "gist"); h.FetchErrors != 0 || h.Failed != 0 {
		t.Fatalf("health = %+v: waiting for a rate limit is not a fetch error", h)
	}
}

func TestPacerSpacesFetches(t *testing.T) {
	t.Parallel()
	p := &pacer{every: 150 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	if later := p.wait(ctx, time.Second); later != 0 || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("first turn: come back in %s after %s, want at once", later, time.Since(start))
	}
	if later := p.wait(ctx, time.Second); later != 0 || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("second turn after %s (come back in %s), want a wait of 150ms", time.Since(start), later)
	}
	// A turn further away than the caller may wait is not taken: the job
	// snoozes instead of holding a worker past its timeout.
	if later := p.wait(ctx, 100*time.Millisecond); later <= 100*time.Millisecond || later > 150*time.Millisecond {
		t.Fatalf("third turn: come back in %s, want 100-150ms", later)
	}
	cancel()
	if later := p.wait(ctx, time.Second); later != 0 || ctx.Err() == nil {
		t.Fatalf("cancelled wait = %s", later)
	}
}
