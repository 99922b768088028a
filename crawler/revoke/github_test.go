package revoke

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

func TestGitHubAccepts(t *testing.T) {
	t.Parallel()
	g := NewGitHub("http://unused/", nil, nil)
	tests := []struct {
		provider, token string
		want            bool
	}{
		{"github", "ghp_" + strings.Repeat("a", 36), true},
		{"github", "github_pat_" + strings.Repeat("B1_", 20), true},
		{"github", "ghs_" + strings.Repeat("z", 36), true},
		{"github", "ghx_" + strings.Repeat("a", 36), false},
		{"aws", "ghp_" + strings.Repeat("a", 36), false},
		{"github", "ghp_short", false},
		{"github", "ghp_" + strings.Repeat("a", 30) + `","x`, false},
	}
	for _, tt := range tests {
		if got := g.Accepts(tt.provider, []byte(tt.token)); got != tt.want {
			t.Errorf("Accepts(%s, %q) = %v", tt.provider, tt.token, got)
		}
	}
}

func TestGitHubRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := githubtest.NewServer()
	t.Cleanup(fake.Close)

	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := NewGitHub(fake.APIURL(), loopbackClient, clock)

	tokens := make([][]byte, 2500)
	for i := range tokens {
		tokens[i] = []byte("ghp_" + strings.Repeat("a", 30) + fmt.Sprintf("%06d", i))
	}
	if err := g.Revoke(ctx, tokens); err != nil {
		t.Fatal(err)
	}
	revoked := fake.Revoked()
	if len(revoked) != 2500 || revoked[0] != string(tokens[0]) || revoked[2499] != string(tokens[2499]) {
		t.Fatalf("revoked %d tokens", len(revoked))
	}
	if n := fake.Requests("/credentials/revoke"); n != 3 {
		t.Fatalf("calls = %d, want 3 batches", n)
	}

	// The hourly budget: 60 calls, then refusals until an hour has passed.
	one := [][]byte{tokens[0]}
	for range GitHubCallsPerHour - 3 {
		if err := g.Revoke(ctx, one); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Revoke(ctx, one); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("61st call: %v", err)
	}
	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	if err := g.Revoke(ctx, one); err != nil {
		t.Fatalf("after an hour: %v", err)
	}
}

// loopbackClient reaches the fake GitHub on loopback, as a deployment
// allowing 127.0.0.0/8 in LEAKWATCH_WEBHOOK_ALLOW_NETS would.
var loopbackClient = webhook.NewHTTPClient(webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, 10*time.Second)
