package web

import (
	"context"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestOverviewTrends: the overview charts time to detect, contain and
// rotate per week (p50 and p90) from the incidents' own timestamps, with
// a text alternative stating the values and a data table.
func TestOverviewTrends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	seedIncidents(t, b.pool, org.ID, 3, "t-")
	// Two incidents three weeks back, contained after 10 and 30 minutes;
	// one this week, contained after 5 minutes and rotated after 50.
	if _, err := b.pool.Exec(ctx, `
		UPDATE incidents SET identified_at = x.at, contained_at = x.at + x.contain, eradicated_at = x.at + x.rotate
		FROM (SELECT k.id, v.at, v.contain, v.rotate FROM keys k JOIN (VALUES
			('t-1', date_trunc('week', now()) - interval '20 days', interval '10 minutes', NULL::interval),
			('t-2', date_trunc('week', now()) - interval '20 days', interval '30 minutes', NULL::interval),
			('t-3', date_trunc('week', now()) + interval '1 second', interval '5 minutes', interval '50 minutes')
		) v(name, at, contain, rotate) ON v.name = k.name WHERE k.org_id = $1) x
		WHERE incidents.key_id = x.id`, org.ID); err != nil {
		t.Fatal(err)
	}
	weeks, err := b.srv.incidents.TimesByWeek(ctx, org.ID, 12)
	if err != nil {
		t.Fatal(err)
	}
	if len(weeks) != 2 || weeks[0].Incidents != 2 || weeks[1].Incidents != 1 {
		t.Fatalf("weeks %+v", weeks)
	}
	w0, w1 := weeks[0], weeks[1]
	if *w0.ContainP50 != 1200 || *w0.ContainP90 != 1680 || w0.RotateP50 != nil || *w1.ContainP50 != 300 || *w1.RotateP90 != 3000 || *w0.DetectP50 != 60 {
		t.Fatalf("times %+v %+v", w0, w1)
	}
	_, _, page := b.signIn(t, "view@acme.example").page("/")
	for _, want := range []string{
		`<svg class="chart" id="chart-trend-contain" role="img"`, `<title id="chart-trend-rotate-title">Time to rotate per week (p50 and p90)</title>`,
		"contain p50: " + w0.Week + " 20m0s, " + w1.Week + " 5m0s", "contain p90: " + w0.Week + " 28m0s",
		"rotate p50: " + w0.Week + " —, " + w1.Week + " 50m0s", `<th scope="row">` + w0.Week + `</th><td>2</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
}
