package crawler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
)

// stubExposer answers from a map of repositories; a missing one fails.
type stubExposer struct {
	repos map[string]Exposure
	asked []string
}

func (s *stubExposer) Exposure(_ context.Context, d *Document) (Exposure, bool, error) {
	s.asked = append(s.asked, d.Repo)
	e, ok := s.repos[d.Repo]
	if !ok {
		return Exposure{}, false, errors.New("github: 502 bad gateway")
	}
	return e, true, nil
}

// TestPipelineExposure: exposure is looked up only for documents with
// findings and reaches the findings; a private flag the source set survives
// the lookup; a failed lookup records the finding anyway, as public with
// unknown reach, and is counted.
func TestPipelineExposure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, reg, tok := tokenRegistry(t, "deploy")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ex := &stubExposer{repos: map[string]Exposure{"octo/popular": {Reach: 5400}, "octo/internal": {Private: true}, "octo/quiet": {}}}
	rec := &recorder{}
	p := NewPipeline(reg, rec, nil).WithExposer(ex, logger, nil)
	doc := func(repo, text string, private bool) Document {
		return Document{Source: "github", Repo: repo, URL: "https://github.com/" + repo, Text: []byte(text), Private: private}
	}
	n, err := p.Process(ctx, []Document{
		doc("octo/clean", "nothing here", false),
		doc("octo/popular", "TOKEN="+tok, false),
		doc("octo/internal", "TOKEN="+tok, false),
		doc("octo/quiet", "TOKEN="+tok, true),
		doc("octo/down", "TOKEN="+tok, false),
	})
	if err != nil || n != 4 {
		t.Fatalf("Process = %d, %v; want 4 findings", n, err)
	}
	if len(ex.asked) != 4 || ex.asked[0] != "octo/popular" {
		t.Fatalf("asked about %v; want only the four documents with findings", ex.asked)
	}
	want := map[string][2]any{
		"octo/popular":  {false, 5400},
		"octo/internal": {true, 0},
		"octo/quiet":    {true, 0}, // the source said private; the lookup cannot make it public
		"octo/down":     {false, 0},
	}
	for _, f := range rec.fs {
		w := want[f.Repo]
		if f.Private != w[0] || f.Reach != w[1] {
			t.Errorf("%s: private %v reach %d, want %v %v", f.Repo, f.Private, f.Reach, w[0], w[1])
		}
	}
	if got := value(t, p.exposeLookups.WithLabelValues("error")); got != 1 {
		t.Fatalf("%v failed lookups counted, want 1", got)
	}
	if got := value(t, p.exposeLookups.WithLabelValues("ok")); got != 3 {
		t.Fatalf("%v lookups counted ok, want 3", got)
	}
}
