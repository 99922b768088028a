package github

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
)

func (b testBundle) findingsIn(repo string) []crawler.Finding {
	var out []crawler.Finding
	for _, f := range b.rec.all() {
		if f.Repo == repo {
			out = append(out, f)
		}
	}
	return out
}

// filler returns n files that add harmless lines.
func filler(prefix string, n int) []githubtest.File {
	fs := make([]githubtest.File, n)
	for i := range fs {
		fs[i] = githubtest.File{Path: fmt.Sprintf("%s/file%04d.txt", prefix, i), Patch: patchAdding(1, "hello", "world")}
	}
	return fs
}

func TestPush(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{MaxPatchBytes: 4096, MaxWalkCommits: 20})
	at := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	leak := func(start int) string { return patchAdding(start, "# settings", "GITHUB_TOKEN="+b.secret) }
	// Each case builds its own repository; want is where the secret is.
	type want struct {
		commit, path string
		line         int
		commits      int
		mode         string
	}
	base := func(repo string) string {
		sha := githubtest.SHA(repo + ":base")
		b.gh.AddCommits(repo, githubtest.Commit{SHA: sha, Message: "initial", AuthorLogin: "alice", Date: at})
		b.gh.SetBranch(repo, "main", sha)
		return sha
	}
	tests := []struct {
		name  string
		build func(repo string) (PushArgs, want)
		check func(t *testing.T, res FetchResult)
	}{
		{"one commit", func(repo string) (PushArgs, want) {
			before := base(repo)
			head := githubtest.SHA(repo + ":1")
			b.gh.AddCommits(repo, githubtest.Commit{SHA: head, Parents: []string{before}, Message: "add config", AuthorLogin: "bob", Date: at,
				Files: []githubtest.File{{Path: "README.md", Patch: patchAdding(1, "docs")}, {Path: "config/prod.env", Patch: leak(10)}}})
			return PushArgs{Repo: repo, Before: before, Head: head, Ref: "refs/heads/main"}, want{head, "config/prod.env", 12, 1, "compare"}
		}, nil},
		{"push of 300 files", func(repo string) (PushArgs, want) {
			before := base(repo)
			head := githubtest.SHA(repo + ":1")
			files := filler("gen", 299)
			files = append(files, githubtest.File{Path: "zz/last.env", Patch: leak(3)})
			b.gh.AddCommits(repo, githubtest.Commit{SHA: head, Parents: []string{before}, Message: "vendor", AuthorLogin: "bob", Date: at, Files: files})
			return PushArgs{Repo: repo, Before: before, Head: head, Ref: "refs/heads/main"}, want{head, "zz/last.env", 5, 1, "compare"}
		}, func(t *testing.T, res FetchResult) {
			if res.Files != 300 {
				t.Errorf("scanned %d files, want 300", res.Files)
			}
		}},
		{"push of 400 files", func(repo string) (PushArgs, want) {
			before := base(repo)
			head := githubtest.SHA(repo + ":1")
			files := filler("gen", 350)
			files = append(files, githubtest.File{Path: "late/secret.env", Patch: leak(40)})
			files = append(files, filler("more", 49)...)
			b.gh.AddCommits(repo, githubtest.Commit{SHA: head, Parents: []string{before}, Message: "vendor", AuthorLogin: "bob", Date: at, Files: files})
			return PushArgs{Repo: repo, Before: before, Head: head, Ref: "refs/heads/main"}, want{head, "late/secret.env", 42, 1, "compare"}
		}, func(t *testing.T, res FetchResult) {
			if res.Files != 400 {
				t.Errorf("scanned %d files, want 400 (compare stops at 300; the commit's file pages go on)", res.Files)
			}
		}},
		{"several commits", func(repo string) (PushArgs, want) {
			before := base(repo)
			c1, c2, c3 := githubtest.SHA(repo+":1"), githubtest.SHA(repo+":2"), githubtest.SHA(repo+":3")
			b.gh.AddCommits(repo,
				githubtest.Commit{SHA: c1, Parents: []string{before}, Message: "one", AuthorLogin: "bob", Date: at, Files: filler("a", 2)},
				githubtest.Commit{SHA: c2, Parents: []string{c1}, Message: "two", AuthorLogin: "carol", Date: at, Files: []githubtest.File{{Path: ".env", Patch: leak(1)}}},
				// The third commit removes the secret again: it still leaked.
				githubtest.Commit{SHA: c3, Parents: []string{c2}, Message: "oops", AuthorLogin: "carol", Date: at, Files: []githubtest.File{{Path: ".env", Patch: "@@ -1,3 +1,1 @@\n # settings\n-# settings\n-GITHUB_TOKEN=x"}}},
			)
			return PushArgs{Repo: repo, Before: before, Head: c3, Ref: "refs/heads/main"}, want{c2, ".env", 3, 3, "compare"}
		}, nil},
		{"more than 250 commits", func(repo string) (PushArgs, want) {
			before := base(repo)
			prev := before
			var first string
			var commits []githubtest.Commit
			for i := range 260 {
				sha := githubtest.SHA(fmt.Sprintf("%s:%d", repo, i))
				c := githubtest.Commit{SHA: sha, Parents: []string{prev}, Message: "c", AuthorLogin: "bob", Date: at, Files: filler("x", 1)}
				if i == 0 {
					first = sha
					c.Files = []githubtest.File{{Path: "first.env", Patch: leak(7)}}
				}
				commits = append(commits, c)
				prev = sha
			}
			b.gh.AddCommits(repo, commits...)
			return PushArgs{Repo: repo, Before: before, Head: prev, Ref: "refs/heads/main"}, want{first, "first.env", 9, 260, "compare"}
		}, nil},
		{"new branch", func(repo string) (PushArgs, want) {
			main := base(repo)
			head := githubtest.SHA(repo + ":feature")
			b.gh.AddCommits(repo, githubtest.Commit{SHA: head, Parents: []string{main}, Message: "feature", AuthorLogin: "dave", Date: at,
				Files: []githubtest.File{{Path: "src/app.py", Patch: leak(100)}}})
			b.gh.SetBranch(repo, "feature", head)
			return PushArgs{Repo: repo, Before: zeroSHA, Head: head, Ref: "refs/heads/feature"}, want{head, "src/app.py", 102, 1, "new-branch"}
		}, nil},
		{"force push", func(repo string) (PushArgs, want) {
			main := base(repo)
			head := githubtest.SHA(repo + ":rewritten")
			b.gh.AddCommits(repo, githubtest.Commit{SHA: head, Parents: []string{main}, Message: "rewrite", AuthorLogin: "erin", Date: at,
				Files: []githubtest.File{{Path: "deploy.sh", Patch: leak(2)}}})
			// before was rewritten away: GitHub no longer knows it.
			return PushArgs{Repo: repo, Before: githubtest.SHA("gone"), Head: head, Ref: "refs/heads/main"}, want{head, "deploy.sh", 4, 2, "force-push"}
		}, nil},
		{"first push of a repository", func(repo string) (PushArgs, want) {
			head := githubtest.SHA(repo + ":root")
			b.gh.AddCommits(repo, githubtest.Commit{SHA: head, Message: "init", AuthorLogin: "frank", Date: at,
				Files: []githubtest.File{{Path: "config.yml", Status: "added", Patch: "@@ -0,0 +1,2 @@\n+# settings\n+GITHUB_TOKEN=" + b.secret}}})
			b.gh.SetBranch(repo, "main", head)
			return PushArgs{Repo: repo, Before: zeroSHA, Head: head, Ref: "refs/heads/main"}, want{head, "config.yml", 2, 1, "walk"}
		}, nil},
		{"binary and oversized files are skipped and counted", func(repo string) (PushArgs, want) {
			before := base(repo)
			head := githubtest.SHA(repo + ":1")
			big := patchAdding(1, strings.Repeat("x", 5000), "GITHUB_TOKEN="+b.secret)
			b.gh.AddCommits(repo, githubtest.Commit{SHA: head, Parents: []string{before}, Message: "assets", AuthorLogin: "bob", Date: at,
				Files: []githubtest.File{{Path: "logo.png", Binary: true}, {Path: "huge.txt", Patch: big}, {Path: "ok.env", Patch: leak(1)}, {Path: "gone.txt", Status: "removed", Patch: "@@ -1 +0,0 @@\n-x"}}})
			return PushArgs{Repo: repo, Before: before, Head: head, Ref: "refs/heads/main"}, want{head, "ok.env", 3, 1, "compare"}
		}, func(t *testing.T, res FetchResult) {
			if res.SkippedBinary != 1 || res.SkippedLarge != 1 || res.Files != 1 {
				t.Errorf("result %+v: want 1 binary and 1 large skipped, 1 file scanned", res)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			repo := fmt.Sprintf("octo/push%d", i)
			args, w := tt.build(repo)
			args.EventID, args.Actor, args.EventAt = "4242", "pusher", at
			res, err := b.fetcher.Push(context.Background(), args)
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			if res.Mode != w.mode || res.Commits != w.commits {
				t.Errorf("mode %q commits %d, want %q %d", res.Mode, res.Commits, w.mode, w.commits)
			}
			if tt.check != nil {
				tt.check(t, res)
			}
			fs := b.findingsIn(repo)
			if len(fs) != 1 {
				t.Fatalf("%d findings, want 1: %+v", len(fs), fs)
			}
			f := fs[0]
			wantURL := BlobURL(repo, w.commit, w.path) + fmt.Sprintf("#L%d", w.line)
			if f.URL != wantURL || f.Line != w.line || f.Commit != w.commit || f.Path != w.path || f.KeyID != b.keyID {
				t.Errorf("finding url %q line %d commit %s path %q key %d\nwant url %q line %d commit %s path %q key %d",
					f.URL, f.Line, f.Commit, f.Path, f.KeyID, wantURL, w.line, w.commit, w.path, b.keyID)
			}
			if f.EventID != "4242" || f.EventType != "PushEvent" || !f.EventAt.Equal(at) || f.Actor == "" || f.Actor == "pusher" {
				t.Errorf("provenance event %s %s at %v actor %q: want the event and the commit's author", f.EventID, f.EventType, f.EventAt, f.Actor)
			}
			if strings.Contains(f.Preview, b.secret) {
				t.Error("preview holds the secret")
			}
		})
	}
}

func TestWikiAndTree(t *testing.T) {
	t.Parallel()
	b := setup(t, FetchConfig{TreeMaxFiles: 3, TreeMaxFileBytes: 1000})
	ctx := context.Background()
	at := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)

	t.Run("wiki", func(t *testing.T) {
		b.gh.SetWikiPage("octo/wiki", "Setup", []byte("# Setup\n\nRun:\n\n    export GITHUB_TOKEN="+b.secret+"\n"))
		res, err := b.fetcher.Wiki(ctx, WikiArgs{Repo: "octo/wiki", EventID: "77", Actor: "gina", EventAt: at,
			Pages: []WikiPage{{Name: "Setup", HTMLURL: "https://github.com/octo/wiki/wiki/Setup"}, {Name: "Missing"}}})
		if err != nil {
			t.Fatal(err)
		}
		fs := b.findingsIn("octo/wiki")
		if res.Files != 1 || res.SkippedGone != 1 || len(fs) != 1 || fs[0].URL != "https://github.com/octo/wiki/wiki/Setup" || fs[0].Line != 5 || fs[0].EventType != "GollumEvent" {
			t.Fatalf("result %+v findings %+v", res, fs)
		}
	})
	t.Run("tree", func(t *testing.T) {
		sha := githubtest.SHA("tree")
		b.gh.SetTree("octo/public", "main", sha, map[string][]byte{
			"README.md":       []byte("hello"),
			"config/app.yml":  []byte("a: 1\nb: 2\ntoken: " + b.secret + "\n"),
			"img/logo.png":    {0x89, 'P', 'N', 'G', 0, 0, 1},
			"vendor/big.js":   []byte(strings.Repeat("x", 2000)),
			"z/over-bound.md": []byte("one too many"),
			"z/zz.md":         []byte("and another"),
		})
		res, err := b.fetcher.Tree(ctx, TreeArgs{Repo: "octo/public", EventID: "88", EventType: "PublicEvent", Actor: "hank", EventAt: at})
		if err != nil {
			t.Fatal(err)
		}
		fs := b.findingsIn("octo/public")
		want := BlobURL("octo/public", sha, "config/app.yml") + "#L3"
		if len(fs) != 1 || fs[0].URL != want || fs[0].Line != 3 {
			t.Fatalf("findings %+v, want one at %s", fs, want)
		}
		if res.Files != 3 || res.SkippedBinary != 1 || res.SkippedLarge != 1 || res.Truncated != 1 {
			t.Fatalf("result %+v: want 3 files scanned (the bound), 1 binary, 1 large, 1 over the file bound", res)
		}
	})
}
