package github

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
)

// TestRepoExposure asks the fake GitHub about repositories: visibility and
// stars plus forks come back, answers are cached per repository until the
// TTL passes, and repositories GitHub does not show, or documents from
// other sources, are unknown without an error.
func TestRepoExposure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := githubtest.NewServer()
	t.Cleanup(fake.Close)
	fake.SetRepoExposure("octo/popular", false, 3000, 512)
	fake.SetRepoExposure("octo/internal", true, 4, 0)
	c, err := NewClientWithConfig(ClientConfig{BaseURL: fake.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	re := NewRepoExposure(c, time.Hour)
	re.now = func() time.Time { return now }
	c.repos.now = re.now // the client's repository cache, shared with the push fetcher

	tests := []struct {
		doc   crawler.Document
		want  crawler.Exposure
		known bool
	}{
		{crawler.Document{Source: "github", Repo: "octo/popular"}, crawler.Exposure{Reach: 3512}, true},
		{crawler.Document{Source: "github", Repo: "octo/internal"}, crawler.Exposure{Private: true, Reach: 4}, true},
		{crawler.Document{Source: "github", Repo: "octo/gone"}, crawler.Exposure{}, false},
		{crawler.Document{Source: "pastebin", Repo: ""}, crawler.Exposure{}, false},
		{crawler.Document{Source: "github", Repo: "no-slash"}, crawler.Exposure{}, false},
	}
	for _, tt := range tests {
		got, known, err := re.Exposure(ctx, &tt.doc)
		if err != nil || got != tt.want || known != tt.known {
			t.Errorf("%s %s: %+v known %v err %v; want %+v known %v", tt.doc.Source, tt.doc.Repo, got, known, err, tt.want, tt.known)
		}
	}
	// Cached: a burst of findings in one repository is one request.
	fake.SetRepoExposure("octo/popular", false, 9000, 1000)
	for range 3 {
		if got, _, _ := re.Exposure(ctx, &crawler.Document{Source: "github", Repo: "octo/popular"}); got.Reach != 3512 {
			t.Fatalf("cached reach %d, want 3512", got.Reach)
		}
	}
	if n := fake.Requests("/repos/octo/popular"); n != 1 {
		t.Fatalf("%d requests for one repository, want 1", n)
	}
	now = now.Add(time.Hour + time.Second)
	if got, _, _ := re.Exposure(ctx, &crawler.Document{Source: "github", Repo: "octo/popular"}); got.Reach != 10000 {
		t.Fatalf("after the TTL reach %d, want the new 10000", got.Reach)
	}
}

// TestPlanPrivateEvent: an organisation feed's event of a private
// repository ("public": false) gives private documents.
func TestPlanPrivateEvent(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	for _, public := range []bool{true, false} {
		raw := githubtest.CommentEvent(1, "acme/internal", "a", "key: SECRET", at)
		if !public {
			raw = bytes.Replace(raw, []byte(`"public":true`), []byte(`"public":false`), 1)
		}
		ev, _, err := decodeEvent(raw)
		if err != nil {
			t.Fatal(err)
		}
		docs, _, err := Documents(ev)
		if err != nil || len(docs) == 0 {
			t.Fatalf("documents %v, %v", docs, err)
		}
		for _, d := range docs {
			if d.Private == public {
				t.Errorf("public %v event gave a document with Private %v", public, d.Private)
			}
		}
	}
}
