package incidents

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"

	"github.com/leakwatch/leakwatch/internal/dbtest"
	"github.com/leakwatch/leakwatch/internal/jobs"
)

type testBundle struct {
	pool   *pgxpool.Pool
	svc    *Service
	orgID  int64
	keyID  int64
	logger *slog.Logger
}

func setup(t *testing.T) testBundle {
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
	return testBundle{pool: pool, svc: NewService(pool, rc, logger), orgID: orgID, keyID: keyID, logger: logger}
}

func (b testBundle) finding(url string, line int) Finding {
	return Finding{
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
		if err := b.svc.Record(ctx, []Finding{b.finding("https://x/1", 3)}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incidents WHERE state = 'open'`); n != 1 {
			t.Fatalf("incidents = %d", n)
		}
		job := rivertest.RequireInserted(ctx, t, riverpgxv5.New(b.pool), &NotifyArgs{}, nil)
		var id int64
		if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if job.Args.IncidentID != id {
			t.Fatalf("alert for incident %d, want %d", job.Args.IncidentID, id)
		}
	})

	t.Run("further sightings are occurrences, with one alert", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for i := range 3 {
			if err := b.svc.Record(ctx, []Finding{b.finding("https://x/"+string(rune('a'+i)), 3)}); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incidents`); n != 1 {
			t.Fatalf("incidents = %d, want 1", n)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM occurrences`); n != 3 {
			t.Fatalf("occurrences = %d, want 3", n)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM river_job WHERE kind = 'incident_notify'`); n != 1 {
			t.Fatalf("alert jobs = %d, want 1", n)
		}
	})

	t.Run("recording the same sighting twice changes nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		f := b.finding("https://x/1", 3)
		for range 2 {
			if err := b.svc.Record(ctx, []Finding{f, f}); err != nil {
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
			wg.Go(func() { errs <- b.svc.Record(ctx, []Finding{b.finding("https://x/c", i+1)}) })
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
		if n := count(t, b.pool, `SELECT count(*) FROM river_job WHERE kind = 'incident_notify'`); n != 1 {
			t.Fatalf("alert jobs = %d, want 1", n)
		}
	})

	t.Run("replay of a closed incident's sighting opens nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		f := b.finding("https://x/1", 3)
		if err := b.svc.Record(ctx, []Finding{f}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, `UPDATE incidents SET phase = 'closed'`); err != nil {
			t.Fatal(err)
		}
		if err := b.svc.Record(ctx, []Finding{f}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM incidents`); n != 1 {
			t.Fatalf("incidents = %d, want 1", n)
		}
	})
}

func TestNotifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := "AKIAIOSFODNN7EXAMPLESECRETVALUE"

	var mu sync.Mutex
	var posts []map[string]any
	status := http.StatusOK
	slackFake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "down", status)
			return
		}
		posts = append(posts, m)
	}))
	defer slackFake.Close()

	b := setup(t)
	if _, err := b.pool.Exec(ctx, `UPDATE orgs SET slack_webhook_url = $1`, slackFake.URL+"/hook"); err != nil {
		t.Fatal(err)
	}
	f := b.finding("https://github.com/o/r/issues/1#issuecomment-9", 3)
	f.Repo = "<!channel> evil & co"
	f.Preview = "token = AKIA****"
	if err := b.svc.Record(ctx, []Finding{f}); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM incidents`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	n := NewNotifier(b.pool, nil, "https://leakwatch.example", b.logger)
	w := rivertest.NewWorker(t, riverpgxv5.New(b.pool), &river.Config{}, n)

	// Slack down: the job fails (and River retries it); nothing is marked.
	mu.Lock()
	status = http.StatusServiceUnavailable
	mu.Unlock()
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.Work(ctx, t, tx, NotifyArgs{IncidentID: id}, nil)
	if err == nil {
		t.Fatalf("want an error while Slack is down, got %+v", res)
	}
	if strings.Contains(err.Error(), slackFake.URL) {
		t.Fatalf("error leaks the webhook URL: %v", err)
	}
	tx.Rollback(ctx) //nolint:errcheck

	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	for range 2 { // the second run is a retry after success: no second post
		tx, err := b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Work(ctx, t, tx, NotifyArgs{IncidentID: id}, nil); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 1 {
		t.Fatalf("posts = %d, want 1", len(posts))
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(posts[0]); err != nil {
		t.Fatal(err)
	}
	body := buf.String()
	for _, want := range []string{"aws prod", "acme", "issuecomment-9", "Open in Leakwatch", "&lt;!channel&gt; evil &amp; co"} {
		if !strings.Contains(body, want) {
			t.Errorf("alert lacks %q: %s", want, body)
		}
	}
	if strings.Contains(body, "<!channel>") || strings.Contains(body, secret) {
		t.Fatalf("alert carries an injection or the secret: %s", body)
	}
}
