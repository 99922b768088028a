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
	p := &pacer{every: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.wait(ctx); err != nil {
		t.Fatalf("first turn: %v", err)
	}
	cancel() // the second turn is an hour away: only cancellation ends it
	if err := p.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("second turn = %v, want to wait (cancelled)", err)
	}
}
