package github

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakwatch/leakwatch/crawler"
)

// zeroSHA is the "before" of a push that created its branch.
const zeroSHA = "0000000000000000000000000000000000000000"

// GitHub's diff limits: compare lists at most 250 commits per call and 300
// files; a commit's file list pages beyond 300.
const (
	compareMaxFiles = 300
	commitsPerPage  = 100
	docBatch        = 256
)

// PushTimeoutDefault is the default FetchConfig.PushTimeout.
const PushTimeoutDefault = 45 * time.Second

// FetchConfig bounds what the fetch jobs read.
type FetchConfig struct {
	// MaxPatchBytes: a file whose patch is larger is skipped and counted
	// (default 1 MB).
	MaxPatchBytes int
	// MaxPushCommits bounds the commits read from one push (default 2,000).
	MaxPushCommits int
	// MaxWalkCommits bounds the walk back from head when compare cannot
	// help: a force push whose old head is gone, or a new repository's
	// first push (default 100).
	MaxWalkCommits int
	// TreeMaxFiles, TreeMaxBytes and TreeMaxFileBytes bound the scan of a
	// repository made public (defaults 1,000 files, 20 MB, 1 MB per file).
	TreeMaxFiles     int
	TreeMaxBytes     int64
	TreeMaxFileBytes int64
	// WikiMaxBytes bounds one wiki page (default 1 MB).
	WikiMaxBytes int64
	// PushTimeout bounds one slice of a push or tree job (default 45 s); what
	// is left after two thirds of it goes to a follow-up job. River re-runs a
	// job left running by a process that died only once this much time has
	// passed since it started, so it must stay within the rescue window.
	PushTimeout time.Duration
}

func (c FetchConfig) withDefaults() FetchConfig {
	if c.MaxPatchBytes <= 0 {
		c.MaxPatchBytes = 1 << 20
	}
	if c.MaxPushCommits <= 0 {
		c.MaxPushCommits = 2000
	}
	if c.MaxWalkCommits <= 0 {
		c.MaxWalkCommits = 100
	}
	if c.TreeMaxFiles <= 0 {
		c.TreeMaxFiles = 1000
	}
	if c.TreeMaxBytes <= 0 {
		c.TreeMaxBytes = 20 << 20
	}
	if c.TreeMaxFileBytes <= 0 {
		c.TreeMaxFileBytes = 1 << 20
	}
	if c.WikiMaxBytes <= 0 {
		c.WikiMaxBytes = 1 << 20
	}
	if c.PushTimeout <= 0 {
		c.PushTimeout = PushTimeoutDefault
	}
	return c
}

// Fetcher reads what events only point at (pushed commits, wiki pages,
// repository trees) and hands it through the pipeline.
type Fetcher struct {
	gh       *Client
	pipeline *crawler.Pipeline
	cfg      FetchConfig
	logger   *slog.Logger
	skipped  *prometheus.CounterVec
	files    *prometheus.CounterVec
	now      func() time.Time
	coverage *PushCoverage // WithPushCoverage; nil counts nothing
}

// WithPushCoverage makes the push worker count the pushes it fetched. It
// returns f.
func (f *Fetcher) WithPushCoverage(c *PushCoverage) *Fetcher {
	f.coverage = c
	return f
}

// NewFetcher returns a Fetcher. reg may be nil.
func NewFetcher(client *Client, p *crawler.Pipeline, cfg FetchConfig, reg prometheus.Registerer, logger *slog.Logger) *Fetcher {
	f := &Fetcher{gh: client, pipeline: p, cfg: cfg.withDefaults(), logger: logger, now: time.Now,
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "leakwatch", Subsystem: "github", Name: "files_skipped_total",
			Help: "Files not scanned, by reason (binary, large, no_patch, tree_bound, gone) and kind (push, tree, wiki).",
		}, []string{"kind", "reason"}),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "leakwatch", Subsystem: "github", Name: "files_scanned_total",
			Help: "Files scanned, by kind (push, tree, wiki).",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(f.skipped, f.files)
	}
	return f
}

// FetchResult counts what one fetch did.
type FetchResult struct {
	Mode          string `json:"mode"` // compare, new-branch, walk, force-push, tree, wiki
	Commits       int    `json:"commits"`
	Files         int    `json:"files"`
	SkippedBinary int    `json:"skipped_binary"`
	SkippedLarge  int    `json:"skipped_large"`
	SkippedNoDiff int    `json:"skipped_no_patch"`
	SkippedGone   int    `json:"skipped_gone"` // wiki pages not found as Markdown (deleted, or another markup)
	Truncated     int    `json:"truncated"`    // commits or files left out by a bound
	Findings      int    `json:"findings"`
}

// docSink batches documents into the pipeline.
type docSink struct {
	f    *Fetcher
	docs []crawler.Document
	res  *FetchResult
}

func (s *docSink) add(ctx context.Context, d crawler.Document) error {
	s.docs = append(s.docs, d)
	if len(s.docs) >= docBatch {
		return s.flush(ctx)
	}
	return nil
}

func (s *docSink) flush(ctx context.Context) error {
	if len(s.docs) == 0 {
		return nil
	}
	n, err := s.f.pipeline.Process(ctx, s.docs)
	s.res.Findings += n
	s.docs = s.docs[:0]
	return err
}

// PushArgs is one push to fetch and scan. Unique by repository, before and
// head: the same push seen again (a re-poll, another feed) is one job.
type PushArgs struct {
	Repo    string    `json:"repo" river:"unique"`
	Before  string    `json:"before" river:"unique"`
	Head    string    `json:"head" river:"unique"`
	Ref     string    `json:"ref"`
	EventID string    `json:"event_id"`
	Actor   string    `json:"actor"`
	EventAt time.Time `json:"event_at"`
	// DefaultBranch is the repository's default branch when the event
	// says (webhook-shaped payloads carry repository.default_branch): a new
	// branch is then compared against it without asking GitHub.
	DefaultBranch string `json:"default_branch,omitempty"`
	// Fork says the repository is a fork (from the payload, or a ForkEvent
	// seen earlier); forks wait behind other pushes when budget is short.
	Fork bool `json:"fork,omitempty"`
	// Via is "archive" for a push found by GH Archive backfill.
	Via string `json:"via,omitempty"`
	// Commits, in a follow-up job, are the push's commits still to scan
	// (see fetch_slice.go).
	Commits []string `json:"commits,omitempty" river:"unique"`
}

func splitRepo(full string) (string, string, error) {
	owner, name, ok := strings.Cut(full, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("repository %q is not owner/name", full)
	}
	return owner, name, nil
}

// Push fetches every commit of a push and scans the lines each adds.
// compare before...head lists the commits (up to 250 in its first, unpaged
// answer, paged beyond); a push of one commit is scanned from compare's own
// file list unless it holds 300 files (compare's cap), else each commit is
// fetched with all its file pages. A plain push of one commit thus costs
// one request. A new branch compares against the default branch, taken
// from the event when it says, else from the client's repository cache (one
// request per repository and hour, shared with exposure lookups); a force
// push whose old head is gone, or a first push, walks back from head
// (bounded).
func (f *Fetcher) Push(ctx context.Context, a PushArgs) (FetchResult, error) {
	res := FetchResult{Mode: "compare"}
	owner, name, err := splitRepo(a.Repo)
	if err != nil {
		return res, err
	}
	sink := &docSink{f: f, res: &res}
	base := a.Before
	if len(a.Commits) > 0 {
		res.Mode = "continued"
		return res, f.scanCommits(ctx, sink, owner, name, a, a.Commits)
	}
	if base == zeroSHA || base == "" {
		def := a.DefaultBranch
		if def == "" {
			repo, err := f.gh.repository(ctx, owner, name)
			if err != nil {
				return res, err
			}
			def = repo.GetDefaultBranch()
		}
		if def == "" || a.Ref == "refs/heads/"+def {
			// The default branch itself was created: everything is new.
			base, res.Mode = "", "walk"
		} else {
			base, res.Mode = def, "new-branch"
		}
	}
	var shas []string
	if base != "" {
		// Unpaged, compare lists up to 250 commits with the file list: most
		// pushes need nothing more.
		cmp, _, err := f.gh.Repositories.CompareCommits(ctx, owner, name, base, a.Head, nil)
		switch {
		case isStatus(err, 404, 422):
			// The old head is unreachable (force push, garbage collected).
			base, res.Mode = "", "force-push"
		case err != nil:
			return res, fmt.Errorf("compare %s %s...%s: %w", a.Repo, short(base), short(a.Head), err)
		default:
			total := cmp.GetTotalCommits()
			if total == 1 && len(cmp.Commits) == 1 && len(cmp.Files) < compareMaxFiles {
				c := cmp.Commits[0]
				res.Commits = 1
				if err := f.scanCommit(ctx, sink, a, c, cmp.Files); err != nil {
					return res, err
				}
				return res, sink.flush(ctx)
			}
			have := map[string]bool{}
			for _, c := range cmp.Commits {
				if !have[c.GetSHA()] && len(shas) < f.cfg.MaxPushCommits {
					have[c.GetSHA()] = true
					shas = append(shas, c.GetSHA())
				}
			}
			// Past 250 commits, page on from the page holding the next one.
			for page := len(shas)/commitsPerPage + 1; len(shas) < min(total, f.cfg.MaxPushCommits); page++ {
				more, _, err := f.gh.Repositories.CompareCommits(ctx, owner, name, base, a.Head, &gh.ListOptions{PerPage: commitsPerPage, Page: page})
				if err != nil {
					return res, fmt.Errorf("compare %s page %d: %w", a.Repo, page, err)
				}
				if len(more.Commits) == 0 {
					break
				}
				for _, c := range more.Commits {
					if !have[c.GetSHA()] && len(shas) < f.cfg.MaxPushCommits {
						have[c.GetSHA()] = true
						shas = append(shas, c.GetSHA())
					}
				}
			}
			if total > len(shas) {
				res.Truncated += total - len(shas)
			}
		}
	}
	if base == "" {
		opts := &gh.CommitsListOptions{SHA: a.Head, ListOptions: gh.ListOptions{PerPage: min(commitsPerPage, f.cfg.MaxWalkCommits)}}
		for len(shas) < f.cfg.MaxWalkCommits {
			list, resp, err := f.gh.Repositories.ListCommits(ctx, owner, name, opts)
			if err != nil {
				return res, fmt.Errorf("list commits of %s from %s: %w", a.Repo, short(a.Head), err)
			}
			for _, c := range list {
				if len(shas) < f.cfg.MaxWalkCommits {
					shas = append(shas, c.GetSHA())
				}
			}
			if resp.NextPage == 0 {
				break
			}
			if len(shas) >= f.cfg.MaxWalkCommits {
				// History goes on past the bound: say so.
				res.Truncated++
				break
			}
			opts.Page = resp.NextPage
		}
	}
	return res, f.scanCommits(ctx, sink, owner, name, a, shas)
}

// scanCommits fetches and scans commits one by one; when the job's slice is
// over it records what it found and hands the rest to a follow-up job.
func (f *Fetcher) scanCommits(ctx context.Context, sink *docSink, owner, name string, a PushArgs, shas []string) error {
	for i, sha := range shas {
		if i > 0 && sliceOver(ctx) {
			if err := sink.flush(ctx); err != nil {
				return err
			}
			next := a
			next.Commits = shas[i:]
			return &moreWork{Next: next}
		}
		c, files, err := f.commit(ctx, owner, name, sha)
		if err != nil {
			return err
		}
		sink.res.Commits++
		if err := f.scanCommit(ctx, sink, a, c, files); err != nil {
			return err
		}
	}
	return sink.flush(ctx)
}

// commit fetches a commit with every page of its files.
func (f *Fetcher) commit(ctx context.Context, owner, name, sha string) (*gh.RepositoryCommit, []*gh.CommitFile, error) {
	opts := &gh.ListOptions{}
	var first *gh.RepositoryCommit
	var files []*gh.CommitFile
	for {
		c, resp, err := f.gh.Repositories.GetCommit(ctx, owner, name, sha, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("get commit %s/%s@%s: %w", owner, name, short(sha), err)
		}
		if first == nil {
			first = c
		}
		files = append(files, c.Files...)
		if resp.NextPage == 0 {
			return first, files, nil
		}
		opts.Page = resp.NextPage
	}
}

func (f *Fetcher) scanCommit(ctx context.Context, sink *docSink, a PushArgs, c *gh.RepositoryCommit, files []*gh.CommitFile) error {
	sha := c.GetSHA()
	author := c.GetAuthor().GetLogin()
	if author == "" {
		author = c.GetCommit().GetAuthor().GetName()
	}
	if author == "" {
		author = a.Actor
	}
	fetched := f.now()
	base := crawler.Document{
		Source: "github", EventID: a.EventID, EventType: "PushEvent", Repo: a.Repo, Commit: sha,
		Actor: author, EventAt: a.EventAt, FetchedAt: fetched, Via: a.Via,
	}
	if msg := c.GetCommit().GetMessage(); msg != "" {
		d := base
		d.URL = "https://github.com/" + a.Repo + "/commit/" + sha
		d.Text = []byte(msg)
		if err := sink.add(ctx, d); err != nil {
			return err
		}
	}
	for _, file := range files {
		if file.GetStatus() == "removed" {
			continue
		}
		patch := file.GetPatch()
		switch {
		case patch == "" && file.GetChanges() == 0 && file.GetStatus() != "renamed":
			sink.res.SkippedBinary++
			f.skipped.WithLabelValues("push", "binary").Inc()
			continue
		case patch == "" && file.GetChanges() > 0:
			// GitHub leaves the patch out of diffs past its own limits.
			sink.res.SkippedNoDiff++
			f.skipped.WithLabelValues("push", "no_patch").Inc()
			continue
		case patch == "":
			continue
		case len(patch) > f.cfg.MaxPatchBytes:
			sink.res.SkippedLarge++
			f.skipped.WithLabelValues("push", "large").Inc()
			continue
		}
		text, lines := AddedLines([]byte(patch))
		sink.res.Files++
		f.files.WithLabelValues("push").Inc()
		if len(lines) == 0 {
			continue
		}
		d := base
		d.Path = file.GetFilename()
		d.URL = BlobURL(a.Repo, sha, d.Path)
		d.AnchorLines = true
		d.LineMap = lines
		d.Text = text
		if err := sink.add(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

func short(sha string) string { return sha[:min(len(sha), 12)] }

// WikiArgs is a wiki edit whose pages are fetched and scanned. Unique by
// repository and page revisions.
type WikiArgs struct {
	Repo    string     `json:"repo" river:"unique"`
	Pages   []WikiPage `json:"pages" river:"unique"`
	EventID string     `json:"event_id"`
	Actor   string     `json:"actor"`
	EventAt time.Time  `json:"event_at"`
	Via     string     `json:"via,omitempty"`
}

// WikiPage is one page of a GollumEvent.
type WikiPage struct {
	Name    string `json:"name"`
	SHA     string `json:"sha"`
	HTMLURL string `json:"html_url"`
}

// Wiki fetches each edited page's Markdown source from the raw host
// (raw.githubusercontent.com/wiki/{owner}/{repo}/{page}.md) and scans it.
func (f *Fetcher) Wiki(ctx context.Context, a WikiArgs) (FetchResult, error) {
	res := FetchResult{Mode: "wiki"}
	owner, name, err := splitRepo(a.Repo)
	if err != nil {
		return res, err
	}
	sink := &docSink{f: f, res: &res}
	for _, p := range a.Pages {
		if p.Name == "" || strings.ContainsAny(p.Name, "/?#") {
			continue
		}
		body, err := f.gh.Raw(ctx, "wiki/"+owner+"/"+name+"/"+url.PathEscape(p.Name)+".md", f.cfg.WikiMaxBytes)
		switch {
		case errors.Is(err, ErrNotFound):
			// Deleted since, or written in another markup (.rst, .asciidoc…).
			res.SkippedGone++
			f.skipped.WithLabelValues("wiki", "gone").Inc()
			continue
		case errors.Is(err, ErrTooLarge):
			res.SkippedLarge++
			f.skipped.WithLabelValues("wiki", "large").Inc()
			continue
		case err != nil:
			return res, err
		}
		res.Files++
		f.files.WithLabelValues("wiki").Inc()
		page := p.HTMLURL
		if page == "" {
			page = "https://github.com/" + a.Repo + "/wiki/" + url.PathEscape(p.Name)
		}
		if err := sink.add(ctx, crawler.Document{
			Source: "github", EventID: a.EventID, EventType: "GollumEvent", Repo: a.Repo, Path: p.Name,
			Actor: a.Actor, URL: page, EventAt: a.EventAt, FetchedAt: f.now(), Via: a.Via, Text: body,
		}); err != nil {
			return res, err
		}
	}
	return res, sink.flush(ctx)
}

// TreeArgs is a repository whose default branch is scanned whole: it was
// made public, or created. Unique by repository.
type TreeArgs struct {
	Repo      string    `json:"repo" river:"unique"`
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	Actor     string    `json:"actor"`
	EventAt   time.Time `json:"event_at"`
	Via       string    `json:"via,omitempty"`
	// A follow-up job (see fetch_slice.go) goes on in Commit's tree after
	// path After, with Files and Bytes already counted against the bounds.
	Commit string `json:"commit,omitempty" river:"unique"`
	After  string `json:"after,omitempty" river:"unique"`
	Files  int    `json:"files,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
}

// Tree scans the default branch of a repository within the configured
// bounds (files, total bytes, bytes per file); what the bounds leave out is
// counted.
func (f *Fetcher) Tree(ctx context.Context, a TreeArgs) (FetchResult, error) {
	res := FetchResult{Mode: "tree"}
	owner, name, err := splitRepo(a.Repo)
	if err != nil {
		return res, err
	}
	sha := a.Commit
	if sha == "" {
		repo, err := f.gh.repository(ctx, owner, name)
		if err != nil {
			return res, err
		}
		branch, _, err := f.gh.Repositories.GetBranch(ctx, owner, name, repo.GetDefaultBranch(), 1)
		if isStatus(err, 404) {
			// An empty repository has no branch yet.
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("get branch %s of %s: %w", repo.GetDefaultBranch(), a.Repo, err)
		}
		sha = branch.GetCommit().GetSHA()
	}
	tree, _, err := f.gh.Git.GetTree(ctx, owner, name, sha, true)
	if err != nil {
		return res, fmt.Errorf("get tree of %s@%s: %w", a.Repo, short(sha), err)
	}
	if tree.GetTruncated() && a.After == "" {
		res.Truncated++
	}
	entries := tree.Entries
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].GetPath() < entries[j].GetPath() })
	sink := &docSink{f: f, res: &res}
	total, files, started, lastPath := a.Bytes, a.Files, false, a.After
	for _, e := range entries {
		if e.GetType() != "blob" || (a.After != "" && e.GetPath() <= a.After) {
			continue
		}
		if started && sliceOver(ctx) {
			if err := sink.flush(ctx); err != nil {
				return res, err
			}
			next := a
			next.Commit, next.After, next.Files, next.Bytes = sha, lastPath, files, total
			return res, &moreWork{Next: next}
		}
		started, lastPath = true, e.GetPath()
		size := int64(e.GetSize())
		if size > f.cfg.TreeMaxFileBytes {
			res.SkippedLarge++
			f.skipped.WithLabelValues("tree", "large").Inc()
			continue
		}
		if files >= f.cfg.TreeMaxFiles || total+size > f.cfg.TreeMaxBytes {
			res.Truncated++
			f.skipped.WithLabelValues("tree", "tree_bound").Inc()
			continue
		}
		blob, _, err := f.gh.Git.GetBlob(ctx, owner, name, e.GetSHA())
		if err != nil {
			return res, fmt.Errorf("get blob %s of %s: %w", e.GetPath(), a.Repo, err)
		}
		content := []byte(blob.GetContent())
		if blob.GetEncoding() == "base64" {
			content, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(blob.GetContent(), "\n", ""))
			if err != nil {
				return res, fmt.Errorf("decode blob %s of %s: %w", e.GetPath(), a.Repo, err)
			}
		}
		total += int64(len(content))
		if looksBinary(content) {
			res.SkippedBinary++
			f.skipped.WithLabelValues("tree", "binary").Inc()
			continue
		}
		res.Files++
		files++
		f.files.WithLabelValues("tree").Inc()
		if err := sink.add(ctx, crawler.Document{
			Source: "github", EventID: a.EventID, EventType: a.EventType, Repo: a.Repo, Commit: sha,
			Path: e.GetPath(), Actor: a.Actor, URL: BlobURL(a.Repo, sha, e.GetPath()), AnchorLines: true,
			EventAt: a.EventAt, FetchedAt: f.now(), Via: a.Via, Text: content,
		}); err != nil {
			return res, err
		}
	}
	return res, sink.flush(ctx)
}
