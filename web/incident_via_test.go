package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
)

// TestOccurrenceViaArchive shows how a sighting was found: the API says
// via live or archive with the detection lag, and the incident page marks
// sightings backfilled from GH Archive.
func TestOccurrenceViaArchive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIncidentFixture(t)
	b, svc, org, k := f.testBundle, f.svc, f.org, f.key
	now := time.Now()
	base := crawler.Finding{KeyID: k.ID, OrgID: org.ID, Fingerprint: k.Fingerprint, Source: "github", Repo: "o/r",
		Line: 1, Column: 1, Encoding: "plain", Preview: "TOKEN=ghp_********", DetectedAt: now}
	live, archived := base, base
	live.URL, live.EventAt = "https://github.com/o/r/issues/1#issuecomment-1", now.Add(-2*time.Second)
	archived.URL, archived.EventAt, archived.Via = "https://github.com/o/r/issues/1#issuecomment-2", now.Add(-3*time.Hour), "archive"
	if err := svc.Record(ctx, []crawler.Finding{live, archived}); err != nil {
		t.Fatal(err)
	}
	var id string
	if err := b.pool.QueryRow(ctx, `SELECT id::text FROM incidents`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	resp := b.signIn(t, "resp@acme.example")
	var d struct {
		OccurrenceList []struct {
			URL                 string   `json:"url"`
			Via                 string   `json:"via"`
			DetectionLagSeconds *float64 `json:"detection_lag_seconds"`
		} `json:"occurrence_list"`
	}
	resp.mustJSON(http.MethodGet, "/api/v1/incidents/"+id, nil, http.StatusOK, &d)
	if len(d.OccurrenceList) != 2 {
		t.Fatalf("occurrences %+v", d.OccurrenceList)
	}
	for _, o := range d.OccurrenceList {
		want, lag := "live", 2.0
		if o.URL == archived.URL {
			want, lag = "archive", 3*3600
		}
		if o.Via != want || o.DetectionLagSeconds == nil || *o.DetectionLagSeconds < lag-1 || *o.DetectionLagSeconds > lag+1 {
			t.Errorf("occurrence %s: via %q lag %v, want %q about %v s", o.URL, o.Via, o.DetectionLagSeconds, want, lag)
		}
	}
	status, _, page := resp.page("/incidents/" + id)
	if status != http.StatusOK {
		t.Fatalf("page = %d", status)
	}
	if n := strings.Count(page, "via GH Archive, 10800 s after the event"); n != 1 {
		t.Fatalf("page marks %d sightings as via GH Archive, want 1", n)
	}
}
