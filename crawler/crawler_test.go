package crawler

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/matcher"
)

type recorder struct {
	mu sync.Mutex
	fs []Finding
}

func (r *recorder) Record(_ context.Context, fs []Finding) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fs = append(r.fs, fs...)
	return nil
}

func token(t *testing.T) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 36)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "ghp_" + string(b)
}

// tokenRegistry gives a database holding an organisation with one
// registered GitHub token, named keyName, and a loaded registry of it.
func tokenRegistry(t *testing.T, keyName string) (*pgxpool.Pool, *keys.Registry, string) {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.New(t)
	var orgID int64
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('acme') RETURNING id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	tok := token(t)
	fp, err := matcher.Compute([]byte(tok), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, $2, $3, $4)`, orgID, keyName, fp.String(), fp.Provider()); err != nil {
		t.Fatal(err)
	}
	reg := keys.NewRegistry(pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return pool, reg, tok
}

// TestPipelineDedup: the same patch at a second location is not scanned
// again but is still recorded there; a key registered after the first scan
// is not hidden by the remembered result.
func TestPipelineDedup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	var orgID int64
	if err := pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('acme') RETURNING id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	addKey := func(name, secret string) {
		fp, err := matcher.Compute([]byte(secret), matcher.ComputeOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, $2, $3, $4)`, orgID, name, fp.String(), fp.Provider()); err != nil {
			t.Fatal(err)
		}
	}
	first, second := token(t), token(t)
	addKey("first", first)
	reg := keys.NewRegistry(pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	p := NewPipeline(reg, rec, nil).WithDedup(pool, time.Hour)
	// The patch below is small; production skips texts under 16 KiB.
	p.dedup.minBytes = 64
	patch := "# deploy settings for the service\nexport GITHUB_TOKEN=" + first + "\nexport OTHER=" + second + "\n"
	doc := func(repo string) Document {
		return Document{Source: "github", Repo: repo, Path: "deploy.sh", URL: "https://github.com/" + repo + "/blob/abc/deploy.sh",
			AnchorLines: true, LineMap: []int{10, 11, 12}, Text: []byte(patch)}
	}
	if n, err := p.Process(ctx, []Document{doc("octo/app")}); err != nil || n != 1 {
		t.Fatalf("first location: %d findings, %v", n, err)
	}
	if n, err := p.Process(ctx, []Document{doc("fork1/app"), doc("fork2/app")}); err != nil || n != 2 {
		t.Fatalf("forks: %d findings, %v", n, err)
	}
	if got := value(t, p.docs.WithLabelValues("github")); got != 1 {
		t.Fatalf("scanned %v documents, want 1 (the forks come from the content table)", got)
	}
	if got := value(t, p.dedupHits.WithLabelValues("github")); got != 2 {
		t.Fatalf("dedup hits %v, want 2", got)
	}
	for _, f := range rec.fs {
		if f.Line != 11 || !strings.HasSuffix(f.URL, "/deploy.sh#L11") || f.Repo == "" {
			t.Errorf("finding %+v", f)
		}
	}
	// A key registered after the content was remembered is still found.
	time.Sleep(10 * time.Millisecond)
	addKey("second", second)
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := p.Process(ctx, []Document{doc("fork3/app")})
	if err != nil || n != 2 {
		t.Fatalf("after a new key: %d findings, %v; want both keys", n, err)
	}
	if got := value(t, p.docs.WithLabelValues("github")); got != 2 {
		t.Fatalf("scanned %v documents, want 2 (rescanned for the new key)", got)
	}

	// Rotating a key to a secret already in remembered content: its
	// created_at does not change, but the content must be rescanned.
	third := token(t)
	rotated := "# other service\nexport API_TOKEN=" + third + "\n"
	other := func(repo string) Document {
		return Document{Source: "github", Repo: repo, Path: "svc.sh", URL: "https://github.com/" + repo + "/blob/abc/svc.sh", Text: []byte(rotated)}
	}
	if n, err := p.Process(ctx, []Document{other("octo/svc")}); err != nil || n != 0 {
		t.Fatalf("before rotation: %d findings, %v; want none", n, err)
	}
	fp, err := matcher.Compute([]byte(third), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE keys SET fingerprint = $1, provider = $2 WHERE name = 'first'`, fp.String(), fp.Provider()); err != nil {
		t.Fatal(err)
	}
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Process(ctx, []Document{other("fork1/svc")}); err != nil || n != 1 {
		t.Fatalf("after rotation: %d findings, %v; want the rotated key found in remembered content", n, err)
	}
	// A process whose key set is behind the database reuses nothing: the
	// remembered scans it would store are stale at once.
	stale := keys.NewRegistry(pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := stale.Load(ctx); err != nil {
		t.Fatal(err)
	}
	addKey("fourth", token(t))
	behind := NewPipeline(stale, &recorder{}, nil).WithDedup(pool, time.Hour)
	behind.dedup.minBytes = 64
	before := value(t, behind.dedupHits.WithLabelValues("github"))
	if _, err := behind.Process(ctx, []Document{other("fork2/svc")}); err != nil {
		t.Fatal(err)
	}
	if got := value(t, behind.dedupHits.WithLabelValues("github")); got != before {
		t.Fatalf("a pipeline behind the key set trusted remembered content (%v hits)", got-before)
	}
}

func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestPipelineRedactsKeysInTitles: a key in an issue title or a paste's
// name is found in the text and recorded, but the finding's title and path
// carry asterisks in its place, like previews.
func TestPipelineRedactsKeysInTitles(t *testing.T) {
	t.Parallel()
	_, reg, tok := tokenRegistry(t, "ci token")
	rec := &recorder{}
	p := NewPipeline(reg, rec, nil)
	title := "please rotate " + tok + " now"
	n, err := p.Process(context.Background(), []Document{
		{Source: "github", EventID: "1", Title: title, Text: []byte(title)},
		{Source: "pastesite", EventID: "2", Title: "env", Path: "token=" + tok, Text: []byte("x=" + tok)},
	})
	if err != nil || n != 2 {
		t.Fatalf("Process = %d, %v; want 2 findings", n, err)
	}
	if got := rec.fs[0].Title; got != "please rotate ******** now" {
		t.Errorf("title = %q", got)
	}
	if got := rec.fs[1].Path; got != "token=********" || rec.fs[1].Title != "env" {
		t.Errorf("path = %q, title = %q", got, rec.fs[1].Title)
	}
}
