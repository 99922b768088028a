package github

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// TestLongFetchesRunInSlices gives a push and a repository tree more work
// than one slice of the job timeout allows: each must hand the rest to
// follow-up jobs, no job may run past its timeout, and the secrets at both
// ends must still be found exactly once.
func TestLongFetchesRunInSlices(t *testing.T) {
	t.Parallel()
	const timeout = 900 * time.Millisecond
	b := setup(t, FetchConfig{PushTimeout: timeout})
	ctx := context.Background()
	b.gh.SetLatency(60 * time.Millisecond)
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	leak := "TOKEN=" + b.secret

	commits := []githubtest.Commit{{SHA: githubtest.SHA("c0"), Message: "init", AuthorLogin: "alice", Date: at}}
	for i := 1; i <= 14; i++ {
		line := fmt.Sprintf("x%d=1", i)
		if i == 1 || i == 14 {
			line = leak
		}
		commits = append(commits, githubtest.Commit{SHA: githubtest.SHA(fmt.Sprint("c", i)), Parents: []string{githubtest.SHA(fmt.Sprint("c", i-1))},
			Message: "step", AuthorLogin: "alice", Date: at, Files: []githubtest.File{{Path: fmt.Sprintf("f%02d.env", i), Patch: patchAdding(1, line)}}})
	}
	b.gh.AddCommits("octo/long", commits...)
	b.gh.SetBranch("octo/long", "main", githubtest.SHA("c14"))
	files := map[string][]byte{}
	for i := range 14 {
		files[fmt.Sprintf("d%02d.txt", i)] = []byte(fmt.Sprintf("v=%d\n", i))
	}
	files["d00.txt"], files["d13.txt"] = []byte(leak+"\n"), []byte(leak+"\n")
	b.gh.SetTree("octo/opened", "main", githubtest.SHA("tree"), files)

	workers := river.NewWorkers()
	AddFetchWorkers(workers, b.fetcher)
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger, Workers: workers, Crawl: 2, TestOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.InsertMany(ctx, []river.InsertManyParams{
		{Args: PushArgs{Repo: "octo/long", Before: githubtest.SHA("c0"), Head: githubtest.SHA("c14"), Ref: "refs/heads/main", EventID: "1", EventAt: at}},
		{Args: TreeArgs{Repo: "octo/opened", EventID: "2", EventType: "PublicEvent", EventAt: at}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })

	var pending int
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state <> 'completed'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 && len(b.rec.all()) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs pending, findings %+v", pending, b.rec.all())
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := map[string]int{}
	for _, f := range b.rec.all() {
		got[f.Path]++
	}
	want := map[string]int{"f01.env": 1, "f14.env": 1, "d00.txt": 1, "d13.txt": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("findings by path %v, want %v", got, want)
	}
	rows, err := b.pool.Query(ctx, `SELECT kind, count(*), max(extract(epoch FROM finalized_at - attempted_at)), sum(attempt)
		FROM river_job GROUP BY kind ORDER BY kind`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var n, attempts int
		var longest float64
		if err := rows.Scan(&kind, &n, &longest, &attempts); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d jobs, longest %.2fs", kind, n, longest)
		if n < 2 {
			t.Errorf("%s ran in %d job; want follow-ups", kind, n)
		}
		if attempts != n || longest >= timeout.Seconds() {
			t.Errorf("%s: %d attempts for %d jobs, longest %.2fs; want one attempt each within %s", kind, attempts, n, longest, timeout)
		}
	}
}
