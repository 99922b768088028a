package revoke

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestPGBudgetShared: two processes' revokers share one hourly budget
// through PostgreSQL; it refills as calls age past the hour, and a park
// stops both.
func TestPGBudgetShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	a, b := NewPGBudget(pool, "github-credentials-api", 5), NewPGBudget(pool, "github-credentials-api", 5)
	other := NewPGBudget(pool, "another-provider", 5)
	t0 := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	took := 0
	for i := range 8 {
		bud := a
		if i%2 == 1 {
			bud = b
		}
		ok, err := bud.Take(ctx, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			took++
		}
	}
	if took != 5 {
		t.Fatalf("two processes took %d calls of a budget of 5", took)
	}
	if ok, _ := other.Take(ctx, t0); !ok {
		t.Fatal("another revoker's budget was spent by this one's calls")
	}
	// The first call (at t0) ages out after an hour: one more call.
	if ok, _ := b.Take(ctx, t0.Add(time.Hour+30*time.Second)); !ok {
		t.Fatal("no call after the first one aged out")
	}
	if ok, _ := a.Take(ctx, t0.Add(time.Hour+31*time.Second)); ok {
		t.Fatal("a sixth call within the hour")
	}
	// GitHub says stop: every process waits until the reset.
	later := t0.Add(3 * time.Hour)
	if err := a.Park(ctx, later.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Take(ctx, later); ok {
		t.Fatal("a parked budget gave a call")
	}
	if ok, _ := b.Take(ctx, later.Add(11*time.Minute)); !ok {
		t.Fatal("no call after the park ended")
	}
}

// TestGitHubParksOn429: when GitHub answers 429 the revoker stops calling
// until the reset it names, in every process sharing the budget.
func TestGitHubParksOn429(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	fake := githubtest.NewServer()
	t.Cleanup(fake.Close)
	fake.SetRevokeLimit(1)
	shared := func() *GitHub {
		return NewGitHub(fake.APIURL(), loopbackClient, nil).WithBudget(NewPGBudget(pool, "github-credentials-api", GitHubCallsPerHour))
	}
	p1, p2 := shared(), shared()
	tok := [][]byte{[]byte("ghp_" + strings.Repeat("q", 36))}
	if err := p1.Revoke(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := p1.Revoke(ctx, tok); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("after GitHub's 429: %v, want ErrRateLimited", err)
	}
	calls := fake.Requests("/credentials/revoke")
	if err := p2.Revoke(ctx, tok); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("second process: %v, want ErrRateLimited without calling", err)
	}
	if n := fake.Requests("/credentials/revoke"); n != calls {
		t.Fatalf("a parked revoker called GitHub (%d calls, was %d)", n, calls)
	}
}
