package incidents

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
)

// TestChanges subscribes to an organisation's changes and requires a new
// incident, a new sighting, an acknowledgement and a note to arrive, both
// through LISTEN and, as behind a transaction pooler, through polling
// (WithPolledChanges), where no notification is listened for.
func TestChanges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		poll time.Duration
	}{{"notified", 0}, {"polled", 200 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			b.svc.WithPolledChanges(tc.poll)
			ch, ready, cancel := b.svc.Changes().Subscribe(b.orgID)
			defer cancel()
			<-ready
			expect := func(what string) int64 {
				t.Helper()
				timeout := time.After(3 * time.Second)
				for {
					select {
					case c := <-ch:
						if c.OrgID != b.orgID {
							t.Fatalf("change of org %d", c.OrgID)
						}
						if slices.Contains(c.What, what) {
							return c.IncidentID
						}
					case <-timeout:
						t.Fatalf("no %q change within 3s", what)
					}
				}
			}
			if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 3)}); err != nil {
				t.Fatal(err)
			}
			id := expect("new")
			if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/2", 4)}); err != nil {
				t.Fatal(err)
			}
			if got := expect("sighting"); got != id {
				t.Fatalf("sighting on incident %d, want %d", got, id)
			}
			if err := b.svc.Acknowledge(ctx, id, Actor{Name: "a@example.com", OrgID: b.orgID}); err != nil {
				t.Fatal(err)
			}
			if err := b.svc.AddNote(ctx, id, Actor{Name: "a@example.com", OrgID: b.orgID}, "looking"); err != nil {
				t.Fatal(err)
			}
			expect("note")
		})
	}
}
