package incidents

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/audit"
)

func TestSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st, err := b.svc.Settings(ctx, b.orgID)
	if err != nil || st != DefaultSettings() {
		t.Fatalf("defaults %+v %v", st, err)
	}
	if st.AckCriticalS != 900 {
		t.Fatalf("critical default %d, want 15 minutes", st.AckCriticalS)
	}
	bad := DefaultSettings()
	bad.AckHighS = 10
	if _, err := b.svc.SetSettings(ctx, audit.System, b.orgID, bad, false); !errors.Is(err, ErrInvalidSettings) {
		t.Fatalf("10s limit: %v", err)
	}
	bad = DefaultSettings()
	bad.EscalationSlackURL = "http://hooks.example/x"
	if _, err := b.svc.SetSettings(ctx, audit.System, b.orgID, bad, false); !errors.Is(err, ErrInvalidSettings) {
		t.Fatalf("http escalation URL: %v", err)
	}
	set := DefaultSettings()
	set.AckCriticalS = 120
	set.EscalationSlackURL = "https://hooks.slack.example/services/T/B/X"
	assignee := int64(42)
	set.DefaultAssigneeID = &assignee
	got, err := b.svc.SetSettings(ctx, audit.System, b.orgID, set, false)
	if err != nil || got.AckCriticalS != 120 || !got.EscalationConfigured || got.EscalationSlackURL != "" || *got.DefaultAssigneeID != 42 {
		t.Fatalf("saved %+v %v", got, err)
	}
	// Saving again without a URL keeps it; clearing removes it.
	set.EscalationSlackURL = ""
	if got, _ = b.svc.SetSettings(ctx, audit.System, b.orgID, set, false); !got.EscalationConfigured {
		t.Fatal("escalation URL dropped")
	}
	if got, _ = b.svc.SetSettings(ctx, audit.System, b.orgID, set, true); got.EscalationConfigured {
		t.Fatal("escalation URL not cleared")
	}

	// The new limits drive the sweep, and the default assignee new incidents.
	clock := newFakeClock()
	b.svc.now = clock.Now
	if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 1)}); err != nil {
		t.Fatal(err)
	}
	var assigned *int64
	if err := b.pool.QueryRow(ctx, `SELECT assignee_id FROM incidents`).Scan(&assigned); err != nil || assigned == nil || *assigned != 42 {
		t.Fatalf("assignee %v %v", assigned, err)
	}
	if _, err := b.pool.Exec(ctx, `UPDATE incidents SET severity = 'critical'`); err != nil {
		t.Fatal(err)
	}
	clock.Advance(3 * time.Minute)
	if esc, _, err := b.svc.Sweep(ctx); err != nil || esc != 1 {
		t.Fatalf("escalated %d %v after 3 minutes with a 2-minute limit", esc, err)
	}
}
