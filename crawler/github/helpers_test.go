package github

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/matcher"
)

// recorder is a crawler.Recorder that keeps findings.
type recorder struct {
	mu       sync.Mutex
	findings []crawler.Finding
	notify   chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) Record(_ context.Context, fs []crawler.Finding) error {
	r.mu.Lock()
	r.findings = append(r.findings, fs...)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) all() []crawler.Finding {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]crawler.Finding(nil), r.findings...)
}

type testBundle struct {
	pool     *pgxpool.Pool
	gh       *githubtest.Server
	client   *Client
	rec      *recorder
	pipeline *crawler.Pipeline
	fetcher  *Fetcher
	registry *keys.Registry
	secret   string
	keyID    int64
	logger   *slog.Logger
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func randomToken(t testing.TB, prefix string, n int) string {
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

// setup gives a migrated database with one organisation and one registered
// GitHub token, a fake GitHub, and a pipeline recording into rec.
func setup(t testing.TB, cfg FetchConfig) testBundle {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.New(t)
	var orgID, keyID int64
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('acme') RETURNING id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	secret := randomToken(t, "ghp_", 36)
	fp, err := matcher.Compute([]byte(secret), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, 'deploy token', $2, $3) RETURNING id`,
		orgID, fp.String(), fp.Provider()).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	logger := discardLogger()
	reg := keys.NewRegistry(pool, logger)
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	srv := githubtest.NewServer()
	t.Cleanup(srv.Close)
	client, err := NewClientWithConfig(ClientConfig{BaseURL: srv.APIURL(), RawURL: srv.RawURL(), Tokens: []string{"t1", "t2"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	p := crawler.NewPipeline(reg, rec, nil)
	return testBundle{pool: pool, gh: srv, client: client, rec: rec, pipeline: p, registry: reg,
		fetcher: NewFetcher(client, p, cfg, nil, logger), secret: secret, keyID: keyID, logger: logger}
}

// patchAdding returns a patch that adds lines to a file at line start.
func patchAdding(start int, lines ...string) string {
	var b strings.Builder
	b.WriteString("@@ -" + itoa(start) + ",1 +" + itoa(start) + "," + itoa(len(lines)+1) + " @@\n")
	b.WriteString(" context line\n")
	for _, l := range lines {
		b.WriteString("+" + l + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func itoa(n int) string {
	return big.NewInt(int64(n)).String()
}
