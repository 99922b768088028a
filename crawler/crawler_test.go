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

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/dbtest"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/matcher"
)

type recorder struct {
	mu sync.Mutex
	fs []incidents.Finding
}

func (r *recorder) Record(_ context.Context, fs []incidents.Finding) error {
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
}

func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
