package paste

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler/paste/pastetest"
)

const recordedGists = "testdata/pygithub-replay"

func newGistSource(t *testing.T, fake *pastetest.Gists) *Gist {
	t.Helper()
	// The production wiring passes the crawler's shared GitHub client; any
	// go-github client on the fake's URL behaves the same here.
	client := gh.NewClient(fake.Client())
	u, err := url.Parse(fake.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	client.BaseURL = u
	return NewGist(mustSourceConfig(t, `{"type":"gist"}`), client)
}

func TestGistRecordedListingAndFullGist(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewGists()
	defer fake.Close()
	if err := fake.LoadRecorded(recordedGists); err != nil {
		t.Fatal(err)
	}
	src := newGistSource(t, fake)
	b := setup(t, src)

	// A first poll takes the newest page only.
	l, err := src.List(b.ctx, Checkpoint{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 100 || l.Exhausted || fake.Requests("/gists/public") != 1 {
		t.Fatalf("first listing: %d items in %d requests, exhausted %v; want 100 in 1", len(l.Items), fake.Requests("/gists/public"), l.Exhausted)
	}
	// Later polls page through everything since the checkpoint.
	l, err = src.List(b.ctx, Checkpoint{LastKey: "x", LastPasteAt: time.Date(2012, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 120 || l.Malformed != 0 || !l.Exhausted || fake.Requests("/gists/public") != 3 {
		t.Fatalf("listing: %d items, %d malformed, %d requests; want 120 in 2 more pages of 100", len(l.Items), l.Malformed, fake.Requests("/gists/public"))
	}
	first := l.Items[0]
	if first.ID != "2729695" || first.Author != "kombomilk" || first.URL != "https://gist.github.com/2729695" ||
		first.Revision != "2012-05-19T06:25:16Z" || first.Size != 111 {
		t.Fatalf("first item = %+v", first)
	}

	parts, err := src.Fetch(b.ctx, Item{ID: "6296732", URL: "https://gist.github.com/6296732"})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Name != "GithubAPI.lua" || len(parts[0].Text) != 21229 ||
		parts[0].URL != "https://gist.github.com/6296732#file-githubapi-lua" || parts[0].Truncated {
		t.Fatalf("parts = %q %d bytes %s", parts[0].Name, len(parts[0].Text), parts[0].URL)
	}
	if fake.Requests("/raw") != 0 {
		t.Fatal("a complete file must not be fetched from raw_url")
	}
}

func TestGistFindsSecretInTruncatedFile(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewGists()
	defer fake.Close()
	if err := fake.LoadRecorded(recordedGists); err != nil {
		t.Fatal(err)
	}
	src := newGistSource(t, fake)
	b := setup(t, src)
	b.mustPoll(t, src) // the newest 100 recorded
	b.takeJobs(t)

	at := time.Now().UTC().Add(-2 * time.Minute).Truncate(time.Second)
	big := strings.Repeat("filler line\n", 200) + "token: " + b.secret + "\n"
	fake.Publish(pastetest.Gist{ID: "aa11bb22cc33dd44ee55ff6677889900", Owner: "mallory", Description: "my dotfiles", UpdatedAt: at,
		Files: []pastetest.GistFile{
			{Name: "README.md", Content: "# dotfiles\n"},
			{Name: "config.yml", Content: big, APILimit: 1000},
		}})
	fake.Publish(pastetest.Gist{ID: "deadbeef", Owner: "eve", UpdatedAt: at.Add(time.Second), Files: []pastetest.GistFile{{Name: "x.txt", Content: "x"}}})
	res := b.mustPoll(t, src)
	if res.New != 2 || res.Gap {
		t.Fatalf("poll = %+v, want 2 new, no gap (the since= listing is exhaustive)", res)
	}
	fake.Delete("deadbeef")
	jobs := b.takeJobs(t)
	if len(jobs) != 2 {
		t.Fatalf("jobs = %d, want 2", len(jobs))
	}
	for _, a := range jobs {
		err := b.work(a, 1)
		var jc *rivertype.JobCancelError
		switch a.Item.ID {
		case "deadbeef":
			if !errors.As(err, &jc) || !errors.Is(err, ErrGone) {
				t.Fatalf("deleted gist: work = %v, want cancelled as gone", err)
			}
		default:
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if fake.Requests("/raw") != 1 {
		t.Fatalf("raw fetches = %d, want 1 (the truncated file)", fake.Requests("/raw"))
	}
	fs := b.rec.all()
	if len(fs) != 1 {
		t.Fatalf("findings = %+v, want 1", fs)
	}
	f := fs[0]
	if f.Source != "gist" || f.EventID != "aa11bb22cc33dd44ee55ff6677889900@"+at.Format(time.RFC3339) ||
		f.URL != "https://gist.github.com/aa11bb22cc33dd44ee55ff6677889900#file-config-yml" || f.Path != "config.yml" ||
		f.Line != 201 || f.Actor != "mallory" || f.Title != "my dotfiles" || !f.EventAt.Equal(at) {
		t.Fatalf("finding provenance = %+v", f)
	}
	h := b.health(t, "gist")
	if h.State != StateOK || h.Deleted != 1 {
		t.Fatalf("health = %+v", h)
	}
	// The checkpoint is the newest update: the next listing asks since then.
	cp, err := b.store.Register(b.ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if !cp.LastPasteAt.Equal(at.Add(time.Second)) {
		t.Fatalf("checkpoint = %+v", cp)
	}
}

func TestGistMalformedIsSkipped(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewGists()
	defer fake.Close()
	src := newGistSource(t, fake)
	b := setup(t, src)
	fake.Publish(pastetest.Gist{ID: "bad0", Owner: "x", UpdatedAt: time.Now().Add(-time.Minute), Files: []pastetest.GistFile{{Name: "a", Content: "a"}}})
	b.mustPoll(t, src)
	fake.ServeGistBody("bad0", []byte(`{"id":"bad0","files":{"a":{"content":`))
	jobs := b.takeJobs(t)
	if len(jobs) != 1 {
		t.Fatalf("jobs = %d", len(jobs))
	}
	err := b.work(jobs[0], 1)
	var jc *rivertype.JobCancelError
	if !errors.As(err, &jc) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("work = %v, want cancelled as malformed", err)
	}
	if st, _ := b.itemStatus(t, "gist", jobs[0].Item.Key()); st != StatusSkipped {
		t.Fatalf("status %s, want skipped", st)
	}
	if h := b.health(t, "gist"); h.Skipped != 1 || h.State != StateDegraded {
		t.Fatalf("health = %+v, want 1 skipped, degraded", h)
	}
}

// TestGistScansComments finds a key pasted in a gist's comment, on the
// second page of a long thread, and links the finding to the comment. A
// gist without comments costs no comments request.
func TestGistScansComments(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewGists()
	defer fake.Close()
	src := newGistSource(t, fake)
	b := setup(t, src)
	b.mustPoll(t, src) // empty: sets the checkpoint

	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	var thread []pastetest.GistComment
	for i := range 120 {
		body := "thanks, works for me"
		if i == 114 {
			body = "try with\n```\nexport TOKEN=" + b.secret + "\n```"
		}
		thread = append(thread, pastetest.GistComment{ID: int64(1000 + i), User: "commenter", Body: body})
	}
	fake.Publish(
		pastetest.Gist{ID: "c0ffee", Owner: "alice", Description: "deploy script", UpdatedAt: at,
			Files: []pastetest.GistFile{{Name: "deploy.sh", Content: "#!/bin/sh\necho deploy\n"}}, Comments: thread},
		pastetest.Gist{ID: "quiet", Owner: "bob", UpdatedAt: at.Add(time.Second),
			Files: []pastetest.GistFile{{Name: "notes.txt", Content: "nothing here\n"}}},
	)
	if res := b.mustPoll(t, src); res.New != 2 {
		t.Fatalf("poll = %+v, want 2 new", res)
	}
	for _, a := range b.takeJobs(t) {
		if err := b.work(a, 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.Requests("/gists/{id}/comments"); n != 2 {
		t.Errorf("comments requests = %d, want 2 (two pages of one gist)", n)
	}
	fs := b.rec.all()
	if len(fs) != 1 {
		t.Fatalf("findings = %+v, want 1", fs)
	}
	f := fs[0]
	if f.Path != "comment 1114" || f.URL != "https://gist.github.com/c0ffee#gistcomment-1114" || f.Line != 3 || f.Actor != "alice" {
		t.Fatalf("finding = %+v", f)
	}
}
