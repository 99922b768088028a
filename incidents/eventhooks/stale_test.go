package eventhooks

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/internal/dbtest"
	"github.com/leakwatch/leakwatch/internal/jobs"
	"github.com/leakwatch/leakwatch/internal/secretbox"
	"github.com/leakwatch/leakwatch/internal/webhook"
)

func TestKeyStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc, err := jobs.NewClient(pool, jobs.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	box, _ := secretbox.Parse("")
	store := NewStore(pool, box) // no encryption key: secrets kept as generated
	key, _ := webhook.GenerateSigningKey()
	w := NewWorker(pool, store, webhook.NewSender(webhook.NewHTTPClient(loopback, 5*time.Second), loopback, &key, nil), "", logger)
	sweeper := NewStaleSweeper(w, rc)

	var orgID int64
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('acme') RETURNING id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO keys (org_id, name, fingerprint, provider, max_age_days, created_at) VALUES
			($1, 'old', 'lw1:old', 'aws', 30, now() - interval '100 days'),
			($1, 'fresh', 'lw1:fresh', 'aws', 30, now() - interval '3 days'),
			($1, 'retired', 'lw1:retired', 'aws', 30, now() - interval '100 days')`, orgID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE keys SET state = 'retired' WHERE name = 'retired'`); err != nil {
		t.Fatal(err)
	}
	stale, onlyOpened := newReceiver(t), newReceiver(t)
	_, secret, err := store.Create(ctx, orgID, stale.URL, []string{EventKeyStale})
	if err != nil {
		t.Fatal(err)
	}
	stale.verifier = webhook.Verifier{Secrets: []string{secret}}
	if _, _, err := store.Create(ctx, orgID, onlyOpened.URL, []string{EventIncidentOpened}); err != nil {
		t.Fatal(err)
	}

	for range 2 { // a second sweep queues nothing new
		if err := sweeper.Work(ctx, &river.Job[StaleSweepArgs]{JobRow: &rivertype.JobRow{}}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT args FROM river_job WHERE kind = 'event_webhook_stale'`)
	if err != nil {
		t.Fatal(err)
	}
	var queued []StaleArgs
	for rows.Next() {
		var raw []byte
		var a StaleArgs
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(raw, &a)
		queued = append(queued, a)
	}
	rows.Close()
	if len(queued) != 1 {
		t.Fatalf("queued %+v, want one key.stale for the old key", queued)
	}
	sw := &staleWorker{w: w}
	for range 2 { // a retried job sends nothing new
		if err := sw.Work(ctx, &river.Job[StaleArgs]{JobRow: &rivertype.JobRow{}, Args: queued[0]}); err != nil {
			t.Fatal(err)
		}
	}
	stale.mu.Lock()
	defer stale.mu.Unlock()
	if len(stale.ids) != 1 || len(onlyOpened.got) != 0 {
		t.Fatalf("stale receiver got %d, opened-only receiver %d", len(stale.ids), len(onlyOpened.got))
	}
	if stale.got[0].Type != EventKeyStale {
		t.Fatalf("type %s", stale.got[0].Type)
	}
}
