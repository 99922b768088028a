package incidents

import (
	"context"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
)

// TestSweepEscalatesOnlyUnhandled: the SLA escalates an incident only while
// nobody has acted on it. Contained (by a human or automatically), rotated,
// recovered and acknowledged incidents are being handled, however old.
func TestSweepEscalatesOnlyUnhandled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// set moves the incident to the state under test.
		set      string
		escalate bool
	}{
		{"identified, nobody acted", `UPDATE incidents SET containment = 'pending'`, true},
		{"identified, revocation requested but not answered", `UPDATE incidents SET containment = 'requested'`, true},
		{"identified, revocation endpoint asked for a human", `UPDATE incidents SET containment = 'manual'`, true},
		{"identified, no revocation endpoint", `UPDATE incidents SET containment = 'none'`, true},
		{"identified, acknowledged", `UPDATE incidents SET acknowledged_at = identified_at, acknowledged_by = 'alice@example.com'`, false},
		{"identified, contained automatically", `UPDATE incidents SET containment = 'contained'`, false},
		{"contained by its revocation endpoint", `UPDATE incidents SET phase = 'contained', contained_at = identified_at, containment = 'contained'`, false},
		{"contained by hand", `UPDATE incidents SET phase = 'contained', contained_at = identified_at, containment = 'manual'`, false},
		{"eradicated: the key was rotated", `UPDATE incidents SET phase = 'eradicated', eradicated_at = identified_at`, false},
		{"recovered", `UPDATE incidents SET phase = 'recovered', eradicated_at = identified_at, recovered_at = identified_at`, false},
		{"closed", `UPDATE incidents SET phase = 'closed', closed_at = identified_at`, false},
		{"false positive", `UPDATE incidents SET phase = 'false_positive'`, false},
		{"accepted risk", `UPDATE incidents SET phase = 'accepted_risk'`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			clock := newFakeClock()
			b.svc.now = clock.Now
			if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.pool.Exec(ctx, tt.set); err != nil {
				t.Fatal(err)
			}
			// Past every severity's default limit.
			clock.Advance(DefaultAckLow + time.Minute)
			esc, _, err := b.svc.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if tt.escalate {
				want = 1
			}
			if esc != want {
				t.Fatalf("escalated %d, want %d", esc, want)
			}
			if n := b.heardCount("escalated"); n != want {
				t.Fatalf("escalation notifications = %d, want %d", n, want)
			}
			if n := count(t, b.pool, `SELECT count(*) FROM incidents WHERE escalated_at IS NOT NULL`); n != want {
				t.Fatalf("incidents marked escalated = %d, want %d", n, want)
			}
		})
	}
}
