package paste

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/matcher"
)

// recorder is a crawler.Recorder that keeps what it is given.
type recorder struct {
	mu       sync.Mutex
	findings []crawler.Finding
}

func (r *recorder) Record(_ context.Context, fs []crawler.Finding) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.findings = append(r.findings, fs...)
	return nil
}

func (r *recorder) all() []crawler.Finding {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]crawler.Finding(nil), r.findings...)
}

type testBundle struct {
	ctx      context.Context
	pool     *pgxpool.Pool
	store    *Store
	river    *jobs.Client
	worker   *FetchWorker
	rec      *recorder
	docs     *prometheus.Registry
	secret   string
	registry *keys.Registry
	logger   *slog.Logger
}

func randomToken(t testing.TB, prefix string, n int) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	b.WriteString(prefix)
	for range n {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteByte(alphabet[i.Int64()])
	}
	return b.String()
}

// setup gives a fresh database with one registered secret, a loaded key
// registry, a pipeline recording into a fake, and a River client (not
// started) that knows the fetch worker for sources.
func setup(t testing.TB, sources ...Source) testBundle {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	secret := randomToken(t, "ghp_", 36)
	fp, err := matcher.Compute([]byte(secret), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.NewStore(pool).Add(ctx, audit.System, org.ID, "deploy-bot token", fp); err != nil {
		t.Fatal(err)
	}
	registry := keys.NewRegistry(pool, logger)
	if err := registry.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	pipeline := crawler.NewPipeline(registry, rec, reg).WithDedup(pool, time.Hour)
	worker := NewFetchWorker(pool, sources, pipeline, logger)
	ws := river.NewWorkers()
	AddWorkers(ws, worker)
	rc, err := jobs.NewClient(pool, jobs.Config{Workers: ws, Crawl: 2, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return testBundle{ctx: ctx, pool: pool, store: NewStore(pool), river: rc, worker: worker, rec: rec, docs: reg, secret: secret, registry: registry, logger: logger}
}

func (b testBundle) poller(src Source) *Poller {
	return NewPoller(PollerConfig{Source: src, Pool: b.pool, River: b.river, Logger: b.logger})
}

func (b testBundle) mustPoll(t testing.TB, src Source) PollResult {
	t.Helper()
	res, err := b.poller(src).PollOnce(b.ctx)
	if err != nil {
		t.Fatalf("poll %s: %v", src.Name(), err)
	}
	return res
}

// queued returns the fetch jobs waiting, oldest first, and removes them.
func (b testBundle) takeJobs(t testing.TB) []FetchArgs {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `DELETE FROM river_job WHERE kind = 'paste_fetch' RETURNING id, args`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID   int64
		Args []byte
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	var out []FetchArgs
	for _, r := range rs {
		var a FetchArgs
		if err := json.Unmarshal(r.Args, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// work runs the fetch worker on args as attempt attempt.
func (b testBundle) work(args FetchArgs, attempt int) error {
	job := &river.Job[FetchArgs]{JobRow: &rivertype.JobRow{Attempt: attempt, MaxAttempts: fetchMaxAttempts, Kind: args.Kind()}, Args: args}
	return b.worker.Work(b.ctx, job)
}

// workAll takes every queued fetch job and works it once, failing the test
// on an error other than a cancellation.
func (b testBundle) workAll(t testing.TB) {
	t.Helper()
	for _, a := range b.takeJobs(t) {
		if err := b.work(a, 1); err != nil {
			var jc *rivertype.JobCancelError
			if !errors.As(err, &jc) {
				t.Fatalf("work %s/%s: %v", a.Source, a.Item.Key(), err)
			}
		}
	}
}

func (b testBundle) health(t testing.TB, source string) Health {
	t.Helper()
	hs, err := b.store.Health(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Source == source {
			return h
		}
	}
	t.Fatalf("no health for %s in %+v", source, hs)
	return Health{}
}

func (b testBundle) itemStatus(t testing.TB, source, key string) (status string, findings int) {
	t.Helper()
	err := b.pool.QueryRow(b.ctx, `SELECT status, findings FROM paste_items WHERE source = $1 AND key = $2`, source, key).Scan(&status, &findings)
	if err != nil {
		t.Fatalf("paste %s/%s: %v", source, key, err)
	}
	return status, findings
}

func (b testBundle) scannedDocs(t testing.TB, source string) float64 {
	t.Helper()
	return b.counter(t, "leakwatch_crawler_documents_scanned_total", source)
}

func (b testBundle) counter(t testing.TB, name, source string) float64 {
	t.Helper()
	mfs, err := b.docs.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "source" && l.GetValue() == source {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// leakText is a paste holding the secret on line 4.
func leakText(secret string) string {
	return "deploy notes\n\nstaging:\nexport GITHUB_TOKEN=" + secret + "\nbye\n"
}

func mustSourceConfig(t testing.TB, js string) SourceConfig {
	t.Helper()
	c, err := ParseConfig([]byte(`{"sources":[` + js + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	return c.Sources[0]
}
