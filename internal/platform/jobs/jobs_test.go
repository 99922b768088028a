package jobs

import (
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
)

func TestRescuedJobsRunAgainAtOnce(t *testing.T) {
	t.Parallel()
	p := &retryPolicy{rescueAfter: time.Minute}
	ago := func(d time.Duration) *time.Time { at := time.Now().Add(-d); return &at }
	failures := make([]rivertype.AttemptError, 3) // a job on its fourth attempt
	for _, tc := range []struct {
		name     string
		job      rivertype.JobRow
		min, max time.Duration
	}{
		{"rescued from a dead process", rivertype.JobRow{State: rivertype.JobStateRunning, AttemptedAt: ago(61 * time.Second), Errors: failures}, 0, time.Second},
		{"failed within its timeout", rivertype.JobRow{State: rivertype.JobStateRunning, AttemptedAt: ago(2 * time.Second), Errors: failures}, 200 * time.Second, 300 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if d := time.Until(p.NextRetry(&tc.job)); d < tc.min-time.Second || d > tc.max {
				t.Fatalf("next retry in %s, want %s to %s", d, tc.min, tc.max)
			}
		})
	}
}

// TestRecoveryBound keeps the README's figure: with the default rescue
// window, a killed process's running jobs run again within two minutes.
func TestRecoveryBound(t *testing.T) {
	t.Parallel()
	if b := RecoveryBound(RescueAfterDefault); b > 2*time.Minute || b < RescueAfterDefault+RescuerInterval {
		t.Fatalf("RecoveryBound = %s", b)
	}
}
