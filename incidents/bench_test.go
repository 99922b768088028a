package incidents

import (
	"context"
	"fmt"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler"
)

// BenchmarkRecord measures recording findings against the real database:
// "new" opens an incident (with its revocation request) per finding, "same
// key" appends occurrences to one open incident.
func BenchmarkRecord(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []string{"new", "same key"} {
		b.Run(mode, func(b *testing.B) {
			tb := setup(b)
			keyIDs := []int64{tb.keyID}
			if mode == "new" {
				keyIDs = make([]int64, b.N)
				for i := range b.N {
					if err := tb.pool.QueryRow(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, $2, $3, 'aws') RETURNING id`,
						tb.orgID, fmt.Sprintf("k%d", i), fmt.Sprintf("lw1:bench%d", i)).Scan(&keyIDs[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ResetTimer()
			for i := range b.N {
				f := tb.finding(fmt.Sprintf("https://x/%d", i), i+1)
				f.KeyID = keyIDs[i%len(keyIDs)]
				f.Fingerprint = ""
				if err := tb.svc.Record(ctx, []crawler.Finding{f}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRevokerConcurrentRuns: the same revocation job run twice at once (a
// lost lease) sends the same message id and moves the incident once.
func TestRevokerConcurrentRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRevoke(t)
	if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
		t.Fatal(err)
	}
	id, _, _ := b.incident(t)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			errs <- b.revoker.Work(ctx, &river.Job[RevokeArgs]{JobRow: &rivertype.JobRow{Attempt: 1}, Args: RevokeArgs{IncidentID: id}})
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, phase, _ := b.incident(t); phase != PhaseContained {
		t.Fatalf("phase %s", phase)
	}
	if n := count(t, b.pool, `SELECT count(*) FROM incident_events WHERE to_phase = 'contained'`); n != 1 {
		t.Fatalf("contained transitions = %d", n)
	}
	if n := count(t, b.pool, `SELECT count(*) FROM webhook_deliveries`); n != 1 {
		t.Fatalf("deliveries = %d", n)
	}
	for _, r := range b.receiver.Requests() {
		if r.ID != b.receiver.Requests()[0].ID {
			t.Fatal("two message ids for one request")
		}
	}
}
