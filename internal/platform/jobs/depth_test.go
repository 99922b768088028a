package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

type depthArgs struct{}

func (depthArgs) Kind() string { return "depth_test" }

// TestDepthCollector counts waiting jobs per queue, from the database, and
// caches the count between scrapes.
func TestDepthCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	client, err := jobs.NewClient(pool, jobs.Config{}) // insert-only, as on web
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := client.Insert(ctx, depthArgs{}, &river.InsertOpts{Queue: jobs.QueueScan}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Insert(ctx, depthArgs{}, &river.InsertOpts{Queue: jobs.QueueNotify}); err != nil {
		t.Fatal(err)
	}

	d := jobs.NewDepthCollector(client, time.Hour)
	want := `
# HELP leakwatch_river_queue_available_jobs River jobs ready to run and waiting for a worker, by queue.
# TYPE leakwatch_river_queue_available_jobs gauge
leakwatch_river_queue_available_jobs{queue="crawl"} 0
leakwatch_river_queue_available_jobs{queue="incidents"} 0
leakwatch_river_queue_available_jobs{queue="notify"} 1
leakwatch_river_queue_available_jobs{queue="scan"} 3
`
	if err := testutil.CollectAndCompare(d, strings.NewReader(want), "leakwatch_river_queue_available_jobs"); err != nil {
		t.Fatal(err)
	}
	// Within maxAge a scrape reuses the count: a busy queue costs one query
	// per interval, however many scrapers.
	if _, err := client.Insert(ctx, depthArgs{}, &river.InsertOpts{Queue: jobs.QueueScan}); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(d, strings.NewReader(want), "leakwatch_river_queue_available_jobs"); err != nil {
		t.Fatalf("cached count changed: %v", err)
	}
	want = strings.Replace(want, `{queue="scan"} 3`, `{queue="scan"} 4`, 1)
	if err := testutil.CollectAndCompare(jobs.NewDepthCollector(client, time.Hour), strings.NewReader(want), "leakwatch_river_queue_available_jobs"); err != nil {
		t.Fatal(err)
	}
}
