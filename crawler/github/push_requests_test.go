package github

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
)

// endpointDelta returns the requests per endpoint sent since before.
func endpointDelta(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

const (
	epCompare = "GET /repos/{owner}/{repo}/compare/{basehead}"
	epRepo    = "GET /repos/{owner}/{repo}"
	epCommit  = "GET /repos/{owner}/{repo}/commits/{sha}"
)

// TestPushRequests counts, per endpoint, what one push costs of the token
// budget. A plain push whose compare fits one answer is one request; a new
// branch is one request when the event names the default branch, and when
// it does not, one more per repository and hour, shared with the exposure
// lookup a finding needs.
func TestPushRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, FetchConfig{})
	b.pipeline.WithExposer(NewRepoExposure(b.client, time.Hour), b.logger, nil)
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	n := 0
	commit := func(repo, parent string, leak bool) string {
		n++
		sha := githubtest.SHA(fmt.Sprintf("%s:%d", repo, n))
		line := fmt.Sprintf("value = %d", n)
		if leak {
			line = "GITHUB_TOKEN=" + b.secret
		}
		b.gh.AddCommits(repo, githubtest.Commit{SHA: sha, Parents: []string{parent}, Message: "change", AuthorLogin: "alice", Date: at,
			Files: []githubtest.File{{Path: fmt.Sprintf("f%d.env", n), Patch: patchAdding(1, line)}}})
		return sha
	}
	base := func(repo string) string {
		sha := githubtest.SHA(repo + ":base")
		b.gh.AddCommits(repo, githubtest.Commit{SHA: sha, Message: "initial", Date: at})
		b.gh.SetBranch(repo, "main", sha)
		return sha
	}
	tests := []struct {
		name string
		push func(repo string) PushArgs
		want map[string]int
	}{
		{"plain push of one commit", func(repo string) PushArgs {
			before := base(repo)
			return PushArgs{Repo: repo, Before: before, Head: commit(repo, before, false), Ref: "refs/heads/main"}
		}, map[string]int{epCompare: 1}},
		{"plain push with a finding: exposure is looked up", func(repo string) PushArgs {
			before := base(repo)
			return PushArgs{Repo: repo, Before: before, Head: commit(repo, before, true), Ref: "refs/heads/main"}
		}, map[string]int{epCompare: 1, epRepo: 1}},
		{"new branch, default branch in the payload", func(repo string) PushArgs {
			return PushArgs{Repo: repo, Before: githubtest.ZeroSHA, Head: commit(repo, base(repo), false), Ref: "refs/heads/topic", DefaultBranch: "main"}
		}, map[string]int{epCompare: 1}},
		{"new branch with a finding, default branch asked: one lookup for both", func(repo string) PushArgs {
			return PushArgs{Repo: repo, Before: githubtest.ZeroSHA, Head: commit(repo, base(repo), true), Ref: "refs/heads/topic"}
		}, map[string]int{epCompare: 1, epRepo: 1}},
		{"push of three commits: compare, then each commit's own diff", func(repo string) PushArgs {
			before := base(repo)
			head := commit(repo, commit(repo, commit(repo, before, false), false), false)
			return PushArgs{Repo: repo, Before: before, Head: head, Ref: "refs/heads/main"}
		}, map[string]int{epCompare: 1, epCommit: 3}},
	}
	for i, tt := range tests {
		repo := fmt.Sprintf("octo/r%d", i)
		a := tt.push(repo)
		a.EventAt = at
		before := b.gh.RequestsByEndpoint()
		if _, err := b.fetcher.Push(ctx, a); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := endpointDelta(before, b.gh.RequestsByEndpoint())
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: requests %v, want %v", tt.name, got, tt.want)
		}
	}
	// A second new branch of a repository already looked up: compare only.
	before := b.gh.RequestsByEndpoint()
	head := commit("octo/r3", githubtest.SHA("octo/r3:base"), false)
	if _, err := b.fetcher.Push(ctx, PushArgs{Repo: "octo/r3", Before: githubtest.ZeroSHA, Head: head, Ref: "refs/heads/other", EventAt: at}); err != nil {
		t.Fatal(err)
	}
	if got := endpointDelta(before, b.gh.RequestsByEndpoint()); fmt.Sprint(got) != fmt.Sprint(map[string]int{epCompare: 1}) {
		t.Errorf("second new branch: requests %v, want compare only", got)
	}
}

// TestPushRequestMix measures requests per push over a mix of pushes like
// GitHub's (most of one commit, some new branches, some of a few commits, a
// secret in one in ten) and logs them per endpoint: the figure the README's
// token arithmetic uses. The mix per 100 pushes: 72 plain pushes of one
// commit, 16 new branches of one commit, 10 pushes of 2 commits and 2 of 3,
// over 60 repositories.
func TestPushRequestMix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, FetchConfig{})
	b.pipeline.WithExposer(NewRepoExposure(b.client, time.Hour), b.logger, nil)
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	const pushes = 200
	for r := range 60 {
		repo := fmt.Sprintf("mix/r%d", r)
		b.gh.AddCommits(repo, githubtest.Commit{SHA: githubtest.SHA(repo + ":base"), Message: "initial", Date: at})
		b.gh.SetBranch(repo, "main", githubtest.SHA(repo+":base"))
	}
	tips := map[string]string{}
	before := b.gh.RequestsByEndpoint()
	for i := range pushes {
		repo := fmt.Sprintf("mix/r%d", (i*7)%60)
		parent, ok := tips[repo]
		if !ok {
			parent = githubtest.SHA(repo + ":base")
		}
		commits := 1
		switch i % 50 {
		case 1, 6, 11, 16, 21:
			commits = 2
		case 26:
			commits = 3
		}
		head := parent
		for c := range commits {
			line := fmt.Sprintf("x = %d", i)
			if i%10 == 3 && c == commits-1 {
				line = "TOKEN=" + b.secret
			}
			sha := githubtest.SHA(fmt.Sprintf("%s:%d:%d", repo, i, c))
			b.gh.AddCommits(repo, githubtest.Commit{SHA: sha, Parents: []string{head}, Message: "m", Date: at,
				Files: []githubtest.File{{Path: fmt.Sprintf("f%d.txt", i), Patch: patchAdding(1, line)}}})
			head = sha
		}
		a := PushArgs{Repo: repo, Before: parent, Head: head, Ref: "refs/heads/main", EventAt: at}
		if i%25 >= 21 { // 16 in 100: a new branch
			a.Before, a.Ref = githubtest.ZeroSHA, fmt.Sprintf("refs/heads/topic-%d", i)
		} else {
			tips[repo] = head
			b.gh.SetBranch(repo, "main", head)
		}
		if _, err := b.fetcher.Push(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got := endpointDelta(before, b.gh.RequestsByEndpoint())
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %.3f", k, float64(got[k])/pushes))
	}
	perPush := float64(total(got)) / pushes
	t.Logf("%d pushes, %.3f requests per push (%s)", pushes, perPush, strings.Join(parts, ", "))
	if got[epCompare] != pushes {
		t.Errorf("compare requests %d, want one per push (%d)", got[epCompare], pushes)
	}
	// One compare each; a multi-commit push adds one request per commit (12
	// in 100 pushes: +0.26); new branches and findings add at most one
	// repository lookup per repository (60 of them: +0.3).
	if perPush > 1.6 {
		t.Errorf("%.3f requests per push", perPush)
	}
}
