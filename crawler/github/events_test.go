package github

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// TestEveryArchivedEventDecodes runs the 800 real events of the GH Archive
// sample (15 types) through decoding and planning: every one must decode,
// every type must be known, and each PushEvent must ask for its commits.
func TestEveryArchivedEventDecodes(t *testing.T) {
	t.Parallel()
	evs, err := githubtest.Recorded()
	if err != nil {
		t.Fatal(err)
	}
	types, unknown := map[string]int{}, map[string]int{}
	pushes, docs := 0, 0
	for _, raw := range evs {
		ev, _, err := decodeEvent(raw)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		plan, err := planEvent(ev)
		if err != nil {
			t.Fatalf("event %s (%s): %v", ev.GetID(), ev.GetType(), err)
		}
		if !plan.known {
			t.Errorf("event type %s unknown", ev.GetType())
		}
		types[ev.GetType()]++
		for _, f := range plan.unknownFields {
			unknown[ev.GetType()+"."+f]++
		}
		docs += len(plan.docs)
		for _, j := range plan.jobs {
			if a, ok := j.(PushArgs); ok {
				pushes++
				if len(a.Head) != 40 || a.Repo == "" || a.EventID != ev.GetID() {
					t.Errorf("push job %+v", a)
				}
			}
		}
	}
	if len(evs) != 800 || len(types) != 15 {
		t.Fatalf("%d events of %d types, want 800 of 15: %v", len(evs), len(types), types)
	}
	t.Logf("payload fields go-github v60 does not declare (counted, ignored): %v", unknown)
	if pushes != types["PushEvent"] || docs == 0 {
		t.Fatalf("%d push jobs for %d pushes; %d documents", pushes, types["PushEvent"], docs)
	}
}

// TestPlanTextBearingEvents plants a secret in each kind of event text and
// checks the document's URL and line.
func TestPlanTextBearingEvents(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	body := "first line\nkey: SECRET\n"
	tests := []struct {
		name string
		raw  json.RawMessage
		url  string
	}{
		{"issue comment", githubtest.CommentEvent(1, "o/r", "a", body, at), "https://github.com/o/r/issues/7#issuecomment-1"},
		{"issue", githubtest.IssuesEvent(2, "o/r", "a", "title", body, at), "https://github.com/o/r/issues/9"},
		{"pull request", githubtest.PullRequestEvent(3, "o/r", "a", "title", body, at), "https://github.com/o/r/pull/12"},
		{"review", githubtest.PullRequestReviewEvent(4, "o/r", "a", body, at), "https://github.com/o/r/pull/12#pullrequestreview-4"},
		{"review comment", githubtest.ReviewCommentEvent(5, "o/r", "a", body, "@@ -1 +1 @@\n+x", at), "https://github.com/o/r/pull/12#discussion_r5"},
		{"commit comment", githubtest.CommitCommentEvent(6, "o/r", "a", "abc", body, at), "https://github.com/o/r/commit/abc#commitcomment-6"},
		{"release", githubtest.ReleaseEvent(7, "o/r", "a", "v1", body, at), "https://github.com/o/r/releases/tag/v1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, _, err := decodeEvent(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			docs, known, err := Documents(ev)
			if err != nil || !known {
				t.Fatalf("known %v err %v", known, err)
			}
			found := false
			for _, d := range docs {
				if strings.Contains(string(d.Text), "SECRET") {
					found = true
					if d.URL != tt.url || d.EventAt != at || d.Actor != "a" || d.Repo != "o/r" {
						t.Errorf("document %+v, want url %s", d, tt.url)
					}
				}
			}
			if !found {
				t.Fatalf("no document holds the text: %+v", docs)
			}
		})
	}
}

func TestPlanUnknownEventAndFields(t *testing.T) {
	t.Parallel()
	raw := json.RawMessage(`{"id":"9","type":"SponsorshipEvent","actor":{"login":"a"},"repo":{"name":"o/r"},"payload":{"x":1},"created_at":"2026-01-01T00:00:00Z","brand_new":true}`)
	ev, unknown, err := decodeEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 1 || unknown[0] != "brand_new" {
		t.Fatalf("unknown fields %v", unknown)
	}
	plan, err := planEvent(ev)
	if err != nil || plan.known {
		t.Fatalf("plan %+v err %v: want unknown", plan, err)
	}
	// A known type with a field go-github does not declare: counted, and
	// the text is still scanned.
	raw = json.RawMessage(`{"id":"10","type":"IssuesEvent","actor":{"login":"a"},"repo":{"name":"o/r"},"created_at":"2026-01-01T00:00:00Z",
		"payload":{"action":"opened","issue":{"title":"t","body":"text","html_url":"https://github.com/o/r/issues/1"},"sparkles":{"n":3}}}`)
	if ev, _, err = decodeEvent(raw); err != nil {
		t.Fatal(err)
	}
	plan, err = planEvent(ev)
	if err != nil || !plan.known || len(plan.docs) != 2 || len(plan.unknownFields) != 1 || plan.unknownFields[0] != "sparkles" {
		t.Fatalf("plan %+v err %v: want the issue's 2 texts and 1 unknown field", plan, err)
	}
}

// TestCrawlThroughRiver runs the real workers on a River client: a poll
// queues events, event jobs scan text and queue fetch jobs (one per push,
// however often it is seen), and fetch jobs find the planted secrets.
func TestCrawlThroughRiver(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{})
	ctx := context.Background()
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	leak := "GITHUB_TOKEN=" + b.secret

	// A push, seen twice (two events, same push).
	base, head := githubtest.SHA("base"), githubtest.SHA("head")
	b.gh.AddCommits("octo/svc",
		githubtest.Commit{SHA: base, Message: "init", AuthorLogin: "alice", Date: at},
		githubtest.Commit{SHA: head, Parents: []string{base}, Message: "config", AuthorLogin: "alice", Date: at,
			Files: []githubtest.File{{Path: "app/.env", Patch: patchAdding(4, "A=1", leak)}}})
	b.gh.SetBranch("octo/svc", "main", head)
	b.gh.SetWikiPage("octo/svc", "Deploy", []byte("steps\n"+leak+"\n"))
	b.gh.SetTree("octo/opened", "main", githubtest.SHA("opened"), map[string][]byte{"ci.yml": []byte("env:\n  " + leak + "\n")})
	b.gh.Publish(
		githubtest.PushEvent(100, "octo/svc", "alice", "refs/heads/main", base, head, at),
		githubtest.PushEvent(101, "octo/svc-mirror", "alice", "refs/heads/main", base, head, at),
		githubtest.PushEvent(102, "octo/svc", "alice", "refs/heads/main", base, head, at),
		githubtest.ReleaseEvent(103, "octo/svc", "alice", "v1", "notes\n"+leak, at),
		githubtest.GollumEvent(104, "octo/svc", "alice", "Deploy", at),
		githubtest.PublicEvent(105, "octo/opened", "alice", at),
		githubtest.Event(106, "WatchEvent", "octo/svc", "bob", at, map[string]any{"action": "started"}),
	)

	workers := river.NewWorkers()
	AddWorkers(workers, NewEventsWorker(b.pool, b.pipeline, nil, b.logger))
	AddFetchWorkers(workers, b.fetcher)
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger, Workers: workers, Scan: 2, Crawl: 2, TestOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })
	p := NewPoller(PollerConfig{Client: b.client, Pool: b.pool, River: rc, Logger: b.logger, NoWatches: true})
	if _, err := p.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"push":    BlobURL("octo/svc", head, "app/.env") + "#L6",
		"release": "https://github.com/octo/svc/releases/tag/v1.0.0",
		"wiki":    "https://github.com/octo/svc/wiki/Deploy",
		"tree":    BlobURL("octo/opened", githubtest.SHA("opened"), "ci.yml") + "#L2",
	}
	deadline := time.After(20 * time.Second)
	for {
		got := map[string]bool{}
		for _, f := range b.rec.all() {
			got[f.URL] = true
		}
		missing := 0
		for _, u := range want {
			if !got[u] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		select {
		case <-b.rec.notify:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			rows, _ := b.pool.Query(ctx, `SELECT kind, state, errors::text FROM river_job`)
			for rows.Next() {
				var k, st string
				var e *string
				_ = rows.Scan(&k, &st, &e)
				if e != nil {
					t.Logf("job %s %s %s", k, st, *e)
				} else {
					t.Logf("job %s %s", k, st)
				}
			}
			rows.Close()
			t.Fatalf("findings %+v, want %v", b.rec.all(), want)
		}
	}
	var pushJobs int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'github_push' AND args->>'repo' = 'octo/svc'`).Scan(&pushJobs); err != nil {
		t.Fatal(err)
	}
	if pushJobs != 1 {
		t.Fatalf("%d push jobs for one push seen twice, want 1", pushJobs)
	}
}
