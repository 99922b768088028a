package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestSignInBusy: with every password-check slot taken, a sign-in is
// refused quickly with ErrBusy and its attempt does not count.
func TestSignInBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := NewStore(pool, Config{Argon: ArgonParams{Memory: 64, Time: 1, Threads: 1}, MaxConcurrentChecks: 2, CheckWait: 50 * time.Millisecond})
	s.checks <- struct{}{}
	s.checks <- struct{}{}
	start := time.Now()
	if _, err := s.SignIn(ctx, "a@example.com", "whatever password", "192.0.2.1"); !errors.Is(err, ErrBusy) {
		t.Fatalf("sign in with no free slot = %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("busy answer took %s", d)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM login_attempts`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d attempts recorded, %v; want the refused one withdrawn", n, err)
	}
	<-s.checks
	if _, err := s.SignIn(ctx, "a@example.com", "whatever password", "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("sign in with a free slot = %v", err)
	}
}
