package incidents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

type testBundle struct {
	pool   *pgxpool.Pool
	svc    *Service
	orgID  int64
	keyID  int64
	logger *slog.Logger
	heard  *timelineRecorder // what the timeline notifier heard
}

func setup(t testing.TB) testBundle {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc, err := jobs.NewClient(pool, jobs.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	var orgID, keyID int64
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('acme') RETURNING id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, 'aws prod', 'lw1:test', 'aws') RETURNING id`, orgID).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	heard := &timelineRecorder{}
	svc := NewService(pool, rc, logger, Config{Notifier: heard})
	return testBundle{pool: pool, svc: svc, orgID: orgID, keyID: keyID, logger: logger, heard: heard}
}

// heardCount counts the timeline entries of the given kinds the notifier
// heard (each is one alert or notification).
func (b testBundle) heardCount(kinds ...string) int {
	n := 0
	for _, h := range b.heard.all() {
		_, kind, _ := strings.Cut(h, ":")
		if slices.Contains(kinds, kind) {
			n++
		}
	}
	return n
}

func (b testBundle) finding(url string, line int) crawler.Finding {
	return crawler.Finding{
		KeyID: b.keyID, OrgID: b.orgID, Fingerprint: "lw1:test", Source: "github", EventID: "1",
		EventType: "IssueCommentEvent", URL: url, Repo: "o/r", Line: line, Column: 5, Encoding: "plain",
		Actor: "mallory", Preview: "AWS_KEY=AKIA****", EventAt: time.Now().Add(-time.Minute), DetectedAt: time.Now(),
	}
}

func count(t *testing.T, pool *pgxpool.Pool, q string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("first sighting opens an incident and queues its alert", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rec := b.heard
		if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/1", 3)}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incidents WHERE state = 'open'`); n != 1 {
			t.Fatalf("incidents = %d", n)
		}
		var id int64
		if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if got := rec.all(); len(got) == 0 || got[0] != fmt.Sprintf("%d:opened", id) {
			t.Fatalf("timeline notifier heard %v, want the opening of incident %d first", got, id)
		}
	})

	t.Run("further sightings are occurrences, with one alert", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for i := range 3 {
			if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/"+string(rune('a'+i)), 3)}); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incidents`); n != 1 {
			t.Fatalf("incidents = %d, want 1", n)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM occurrences`); n != 3 {
			t.Fatalf("occurrences = %d, want 3", n)
		}
		if n := b.heardCount("opened"); n != 1 {
			t.Fatalf("alert jobs = %d, want 1", n)
		}
	})

	t.Run("recording the same sighting twice changes nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		f := b.finding("https://x/1", 3)
		for range 2 {
			if err := b.svc.Record(ctx, []crawler.Finding{f, f}); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, b.pool, `SELECT count(*) FROM occurrences`); n != 1 {
			t.Fatalf("occurrences = %d, want 1", n)
		}
	})

	t.Run("concurrent first sightings converge on one incident", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() { errs <- b.svc.Record(ctx, []crawler.Finding{b.finding("https://x/c", i+1)}) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incidents`); n != 1 {
			t.Fatalf("incidents = %d, want 1", n)
		}
		if n := b.heardCount("opened"); n != 1 {
			t.Fatalf("alert jobs = %d, want 1", n)
		}
	})

	t.Run("replay of a closed incident's sighting opens nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		f := b.finding("https://x/1", 3)
		if err := b.svc.Record(ctx, []crawler.Finding{f}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, `UPDATE incidents SET phase = 'closed'`); err != nil {
			t.Fatal(err)
		}
		if err := b.svc.Record(ctx, []crawler.Finding{f}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incidents`); n != 1 {
			t.Fatalf("incidents = %d, want 1", n)
		}
	})
}

// timelineRecorder is a TimelineNotifier that remembers what it heard.
type timelineRecorder struct {
	mu    sync.Mutex
	heard []string
	fail  error
}

func (r *timelineRecorder) TimelineEventTx(_ context.Context, _ pgx.Tx, incidentID, _ int64, kind string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.heard = append(r.heard, fmt.Sprintf("%d:%s", incidentID, kind))
	return nil
}

func (r *timelineRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.heard...)
}

// TestTimelineNotifier: every timeline entry reaches the hook (Slack and
// event webhooks hang off it), inside the entry's transaction.
func TestTimelineNotifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rec := &timelineRecorder{}
	b.svc = NewService(b.pool, b.svc.river, b.logger, Config{Notifier: Notifiers{rec}})
	if err := b.svc.Record(ctx, []crawler.Finding{b.finding("https://github.com/o/r/issues/1#issuecomment-9", 3)}); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	a := Actor{Name: "alice@example.com", OrgID: b.orgID}
	if err := b.svc.Acknowledge(ctx, id, a); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.MarkContained(ctx, id, a, "disabled"); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%[1]d:opened %[1]d:acknowledged %[1]d:marked_contained", id)
	if got := strings.Join(rec.all(), " "); got != want {
		t.Fatalf("heard %s, want %s", got, want)
	}
	if n := count(t, b.pool, `SELECT count(*) FROM incident_events`); n != 3 {
		t.Fatalf("%d timeline entries", n)
	}

	// A notifier that cannot queue fails the action: no entry goes unheard.
	rec.fail = errors.New("queue down")
	if err := b.svc.AddNote(ctx, id, a, "hello"); err == nil {
		t.Fatal("action succeeded although its entry could not be notified")
	}
	if n := count(t, b.pool, `SELECT count(*) FROM incident_events`); n != 3 {
		t.Fatalf("%d timeline entries after a failed notification, want 3 (rolled back)", n)
	}
}
