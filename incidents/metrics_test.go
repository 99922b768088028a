package incidents

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakwatch/leakwatch/crawler"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	reg := prometheus.NewRegistry()
	b.svc.RegisterMetrics(reg)
	clock := newFakeClock()
	b.svc.now = clock.Now
	f := b.finding("https://x/1", 1)
	f.EventAt, f.DetectedAt = clock.Now().Add(-90*time.Second), clock.Now()
	if err := b.svc.Record(ctx, []crawler.Finding{f}); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "leakwatch_incidents_open" && len(mf.GetMetric()) != 1 {
			t.Fatalf("open series = %d", len(mf.GetMetric()))
		}
	}
	clock.Advance(10 * time.Minute)
	if err := b.svc.MarkContained(ctx, id, System, ""); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if err := b.svc.KeyRotated(ctx, b.keyID); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"leakwatch_incidents_time_to_detect_seconds":  90,
		"leakwatch_incidents_time_to_contain_seconds": 600,
		"leakwatch_incidents_time_to_rotate_seconds":  4200,
	} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 1 || h.GetSampleSum() != want {
				t.Errorf("%s: count %d sum %v, want 1 and %v", name, h.GetSampleCount(), h.GetSampleSum(), want)
			}
			found = true
		}
		if !found {
			t.Errorf("%s not exposed", name)
		}
	}
	var gauge float64
	mfs, _ = reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "leakwatch_incidents_open" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "phase" && l.GetValue() == "eradicated" {
						gauge = m.GetGauge().GetValue()
					}
				}
			}
		}
	}
	if gauge != 1 {
		t.Fatalf("open eradicated = %v", gauge)
	}
}
