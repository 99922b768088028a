package crawler_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/crawler/revoke"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// TestPipelineRevoker: a plainly leaked GitHub token is revoked through the
// (fake) GitHub credential revocation API at match time, and its incident
// opens directly as contained; the token reaches neither the findings nor
// the database.
func TestPipelineRevoker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, reg, tok := crawler.TokenRegistry(t, "deploy token")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc, err := jobs.NewClient(pool, jobs.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	fake := githubtest.NewServer()
	t.Cleanup(fake.Close)
	svc := incidents.NewService(pool, rc, logger, incidents.Config{})
	p := crawler.NewPipeline(reg, svc, nil).WithRevoker(revoke.NewGitHub(fake.APIURL(), webhook.NewHTTPClient(webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, 10*time.Second), nil), logger)

	text := "export GITHUB_TOKEN=" + tok + "\n# again\nTOKEN=" + tok + "\n"
	n, err := p.Process(ctx, []crawler.Document{{Source: "github", EventID: "42", Repo: "octo/app", Path: "env.sh", URL: "https://github.com/octo/app/blob/abc/env.sh", Text: []byte(text)}})
	if err != nil || n != 2 {
		t.Fatalf("Process = %d, %v", n, err)
	}
	if got := fake.Revoked(); len(got) != 1 || got[0] != tok {
		t.Fatalf("GitHub got %d credentials", len(got))
	}
	if c := fake.Requests("/credentials/revoke"); c != 1 {
		t.Fatalf("revocation calls = %d, want one batch", c)
	}
	var phase, actor string
	if err := pool.QueryRow(ctx, `
		SELECT i.phase, e.actor FROM incidents i JOIN incident_events e ON e.incident_id = i.id AND e.to_phase = 'contained'`).Scan(&phase, &actor); err != nil {
		t.Fatal(err)
	}
	if phase != "contained" || actor != "github-credentials-api" {
		t.Fatalf("phase %s by %s", phase, actor)
	}
	var leaked int
	if err := pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM occurrences WHERE preview LIKE '%' || $1 || '%' OR url LIKE '%' || $1 || '%')
		     + (SELECT count(*) FROM incident_events WHERE details::text LIKE '%' || $1 || '%')`, tok).Scan(&leaked); err != nil {
		t.Fatal(err)
	}
	if leaked != 0 {
		t.Fatal("the token was stored")
	}
}
