package githubtest

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// CompareMaxCommits and DiffMaxFiles are GitHub's limits: compare lists at
// most 250 commits unpaged, and a diff at most 300 files (a commit's file
// list pages beyond that, up to 3,000).
const (
	CompareMaxCommits = 250
	DiffMaxFiles      = 300
	CommitMaxFiles    = 3000
)

// File is one file changed by a commit. Binary files have no patch.
type File struct {
	Path   string
	Status string // added, modified, removed, renamed; default modified
	Patch  string // unified diff hunks, as GitHub's "patch" field
	Binary bool
}

// Commit is a commit in a fake repository.
type Commit struct {
	SHA         string
	Parents     []string
	Message     string
	AuthorLogin string
	AuthorName  string
	AuthorEmail string
	Date        time.Time
	Files       []File
}

type repo struct {
	fullName      string
	id            int64
	defaultBranch string
	branches      map[string]string // name → commit sha
	commits       map[string]*Commit
	trees         map[string]map[string][]byte // commit sha → path → content
	private       bool
	stars, forks  int
}

// SetRepoExposure sets what GET /repos/{owner}/{repo} says of a repository's
// visibility and reach (created with branch "main" if new).
func (s *Server) SetRepoExposure(fullName string, private bool, stars, forks int) {
	s.AddRepo(fullName, "main")
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[fullName]
	r.private, r.stars, r.forks = private, stars, forks
}

// AddRepo creates a public repository with a default branch.
func (s *Server) AddRepo(fullName, defaultBranch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.repos[fullName]; ok {
		return
	}
	s.repos[fullName] = &repo{
		fullName: fullName, id: int64(len(s.repos) + 1000), defaultBranch: defaultBranch,
		branches: map[string]string{}, commits: map[string]*Commit{}, trees: map[string]map[string][]byte{},
	}
}

// AddCommits stores commits in repo (created with branch "main" if new).
func (s *Server) AddCommits(fullName string, commits ...Commit) {
	s.AddRepo(fullName, "main")
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[fullName]
	for i := range commits {
		c := commits[i]
		r.commits[c.SHA] = &c
	}
}

// SetBranch points a branch at a commit.
func (s *Server) SetBranch(fullName, branch, sha string) {
	s.AddRepo(fullName, "main")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[fullName].branches[branch] = sha
}

// SetTree sets the files of a commit's tree (for tree scans) and points
// branch at it.
func (s *Server) SetTree(fullName, branch, sha string, files map[string][]byte) {
	s.AddRepo(fullName, branch)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[fullName]
	r.trees[sha] = files
	r.branches[branch] = sha
	if _, ok := r.commits[sha]; !ok {
		r.commits[sha] = &Commit{SHA: sha, Message: "tree", Date: time.Now()}
	}
}

// SetWikiPage sets the content of a wiki page.
func (s *Server) SetWikiPage(fullName, page string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wiki[fullName+"/"+page] = content
}

// SHA returns a deterministic 40-hex commit id for a name (tests).
func SHA(name string) string {
	sum := sha1.Sum([]byte(name))
	return hex.EncodeToString(sum[:])
}

// ZeroSHA is the "before" of a push that created its branch.
const ZeroSHA = "0000000000000000000000000000000000000000"

func (s *Server) repoOf(r *http.Request) *repo {
	return s.repos[r.PathValue("owner")+"/"+r.PathValue("repo")]
}

func (s *Server) repo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var rp *repo
	if p := s.repoOf(r); p != nil {
		c := *p // a copy: SetRepoExposure may change it meanwhile
		rp = &c
	}
	s.mu.Unlock()
	if rp == nil {
		notFound(w)
		return
	}
	owner, name, _ := strings.Cut(rp.fullName, "/")
	visibility := "public"
	if rp.private {
		visibility = "private"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": rp.id, "node_id": "R_" + rp.fullName, "name": name, "full_name": rp.fullName,
		"private": rp.private, "owner": map[string]any{"login": owner, "type": "User"},
		"html_url": "https://github.com/" + rp.fullName, "default_branch": rp.defaultBranch,
		"url": s.URL + "/repos/" + rp.fullName, "visibility": visibility,
		"stargazers_count": rp.stars, "watchers_count": rp.stars, "forks_count": rp.forks, "forks": rp.forks,
	})
}

func (s *Server) resolve(rp *repo, ref string) (*Commit, bool) {
	if sha, ok := rp.branches[ref]; ok {
		ref = sha
	}
	c, ok := rp.commits[ref]
	return c, ok
}

func (s *Server) branch(w http.ResponseWriter, r *http.Request) {
	// Readers share the lock: answers are encoded concurrently.
	s.mu.RLock()
	defer s.mu.RUnlock()
	rp := s.repoOf(r)
	if rp == nil {
		notFound(w)
		return
	}
	sha, ok := rp.branches[r.PathValue("branch")]
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": r.PathValue("branch"), "protected": false,
		"commit": s.commitJSON(rp, rp.commits[sha], nil),
	})
}

func (s *Server) commitJSON(rp *repo, c *Commit, files []File) map[string]any {
	if c == nil {
		return nil
	}
	parents := []map[string]any{}
	for _, p := range c.Parents {
		parents = append(parents, map[string]any{"sha": p, "url": s.URL + "/repos/" + rp.fullName + "/commits/" + p})
	}
	date := c.Date.UTC().Format(time.RFC3339)
	out := map[string]any{
		"sha": c.SHA, "node_id": "C_" + c.SHA,
		"commit": map[string]any{
			"author":    map[string]any{"name": c.AuthorName, "email": c.AuthorEmail, "date": date},
			"committer": map[string]any{"name": c.AuthorName, "email": c.AuthorEmail, "date": date},
			"message":   c.Message, "comment_count": 0,
			"tree": map[string]any{"sha": SHA("tree:" + c.SHA)},
		},
		"url":      s.URL + "/repos/" + rp.fullName + "/commits/" + c.SHA,
		"html_url": "https://github.com/" + rp.fullName + "/commit/" + c.SHA,
		"parents":  parents,
	}
	if c.AuthorLogin != "" {
		out["author"] = map[string]any{"login": c.AuthorLogin, "id": 1, "type": "User"}
		out["committer"] = map[string]any{"login": c.AuthorLogin, "id": 1, "type": "User"}
	}
	if files != nil {
		fs := make([]map[string]any, 0, len(files))
		adds, dels := 0, 0
		for _, f := range files {
			j := s.fileJSON(rp, c.SHA, f)
			adds += j["additions"].(int)
			dels += j["deletions"].(int)
			fs = append(fs, j)
		}
		out["files"] = fs
		out["stats"] = map[string]any{"total": adds + dels, "additions": adds, "deletions": dels}
	}
	return out
}

func (s *Server) fileJSON(rp *repo, sha string, f File) map[string]any {
	adds, dels := 0, 0
	for _, l := range strings.Split(f.Patch, "\n") {
		switch {
		case strings.HasPrefix(l, "+"):
			adds++
		case strings.HasPrefix(l, "-"):
			dels++
		}
	}
	status := f.Status
	if status == "" {
		status = "modified"
	}
	esc := escapePath(f.Path)
	out := map[string]any{
		"sha": SHA("blob:" + sha + f.Path), "filename": f.Path, "status": status,
		"additions": adds, "deletions": dels, "changes": adds + dels,
		"blob_url":     "https://github.com/" + rp.fullName + "/blob/" + sha + "/" + esc,
		"raw_url":      "https://github.com/" + rp.fullName + "/raw/" + sha + "/" + esc,
		"contents_url": s.URL + "/repos/" + rp.fullName + "/contents/" + esc + "?ref=" + sha,
	}
	if !f.Binary && f.Patch != "" {
		out["patch"] = f.Patch
	}
	return out
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return strings.Join(parts, "/")
}

func (s *Server) commit(w http.ResponseWriter, r *http.Request) {
	// Readers share the lock: answers are encoded concurrently.
	s.mu.RLock()
	defer s.mu.RUnlock()
	rp := s.repoOf(r)
	if rp == nil {
		notFound(w)
		return
	}
	c, ok := s.resolve(rp, r.PathValue("sha"))
	if !ok {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "No commit found for SHA: " + r.PathValue("sha")})
		return
	}
	// More than 300 files: the file list pages, up to 3,000 files.
	perPage, page := pageParams(r, DiffMaxFiles, DiffMaxFiles)
	files := c.Files[:min(len(c.Files), CommitMaxFiles)]
	start := (page - 1) * perPage
	var pageFiles []File
	if start < len(files) {
		pageFiles = files[start:min(start+perPage, len(files))]
	}
	if pageFiles == nil {
		pageFiles = []File{}
	}
	s.setLink(w, r, perPage, page, (len(files)+perPage-1)/perPage)
	writeJSON(w, http.StatusOK, s.commitJSON(rp, c, pageFiles))
}

// ancestry walks history from sha: first parents first, then the others.
func ancestry(rp *repo, sha string, stop map[string]bool, limit int) []*Commit {
	var out []*Commit
	seen := map[string]bool{}
	queue := []string{sha}
	for len(queue) > 0 && len(out) < limit {
		cur := queue[0]
		queue = queue[1:]
		if seen[cur] || stop[cur] {
			continue
		}
		seen[cur] = true
		c, ok := rp.commits[cur]
		if !ok {
			continue
		}
		out = append(out, c)
		queue = append(c.Parents, queue...)
	}
	return out
}

func (s *Server) commitList(w http.ResponseWriter, r *http.Request) {
	// Readers share the lock: answers are encoded concurrently.
	s.mu.RLock()
	defer s.mu.RUnlock()
	rp := s.repoOf(r)
	if rp == nil {
		notFound(w)
		return
	}
	ref := r.URL.Query().Get("sha")
	if ref == "" {
		ref = rp.defaultBranch
	}
	head, ok := s.resolve(rp, ref)
	if !ok {
		notFound(w)
		return
	}
	perPage, page := pageParams(r, 30, 100)
	all := ancestry(rp, head.SHA, nil, 1<<20)
	start := (page - 1) * perPage
	out := []map[string]any{}
	for i := start; i < min(start+perPage, len(all)); i++ {
		out = append(out, s.commitJSON(rp, all[i], nil))
	}
	s.setLink(w, r, perPage, page, (len(all)+perPage-1)/perPage)
	writeJSON(w, http.StatusOK, out)
}

// compare answers base...head like GitHub: the commits reachable from head
// but not from base (oldest first) and the files they change. For a single
// commit those are its own files; for several, the last patch of each path
// stands in for the combined diff (the crawler fetches commits one by one
// then). An unknown base (a force push whose old head is gone) is a 404.
func (s *Server) compare(w http.ResponseWriter, r *http.Request) {
	// Readers share the lock: answers are encoded concurrently.
	s.mu.RLock()
	defer s.mu.RUnlock()
	rp := s.repoOf(r)
	if rp == nil {
		notFound(w)
		return
	}
	baseRef, headRef, ok := strings.Cut(r.PathValue("basehead"), "...")
	if !ok {
		notFound(w)
		return
	}
	base, okB := s.resolve(rp, baseRef)
	head, okH := s.resolve(rp, headRef)
	if !okB || !okH {
		notFound(w)
		return
	}
	reachBase := map[string]bool{}
	for _, c := range ancestry(rp, base.SHA, nil, 1<<20) {
		reachBase[c.SHA] = true
	}
	ahead := ancestry(rp, head.SHA, reachBase, 1<<20)
	behind := 0
	reachHead := map[string]bool{}
	for _, c := range ancestry(rp, head.SHA, nil, 1<<20) {
		reachHead[c.SHA] = true
	}
	for sha := range reachBase {
		if !reachHead[sha] {
			behind++
		}
	}
	// Oldest first.
	for i, j := 0, len(ahead)-1; i < j; i, j = i+1, j-1 {
		ahead[i], ahead[j] = ahead[j], ahead[i]
	}
	status := "ahead"
	switch {
	case len(ahead) == 0 && behind == 0:
		status = "identical"
	case len(ahead) == 0:
		status = "behind"
	case behind > 0:
		status = "diverged"
	}
	q := r.URL.Query()
	paged := q.Has("page") || q.Has("per_page")
	var list []*Commit
	page := 1
	if paged {
		var perPage int
		perPage, page = pageParams(r, 250, 250)
		start := (page - 1) * perPage
		if start < len(ahead) {
			list = ahead[start:min(start+perPage, len(ahead))]
		}
		s.setLink(w, r, perPage, page, (len(ahead)+perPage-1)/perPage)
	} else {
		list = ahead[:min(len(ahead), CompareMaxCommits)]
	}
	commits := []map[string]any{}
	for _, c := range list {
		commits = append(commits, s.commitJSON(rp, c, nil))
	}
	files := []map[string]any{}
	if page == 1 {
		byPath := map[string]int{}
		var merged []File
		for _, c := range ahead {
			for _, f := range c.Files {
				if i, ok := byPath[f.Path]; ok {
					merged[i] = f
					continue
				}
				byPath[f.Path] = len(merged)
				merged = append(merged, f)
			}
		}
		for _, f := range merged[:min(len(merged), DiffMaxFiles)] {
			files = append(files, s.fileJSON(rp, head.SHA, f))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url":           s.URL + r.URL.Path,
		"html_url":      "https://github.com/" + rp.fullName + "/compare/" + r.PathValue("basehead"),
		"base_commit":   s.commitJSON(rp, base, nil),
		"status":        status,
		"ahead_by":      len(ahead),
		"behind_by":     behind,
		"total_commits": len(ahead),
		"commits":       commits,
		"files":         files,
	})
}

func blobSHA(content []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) tree(w http.ResponseWriter, r *http.Request) {
	// Readers share the lock: answers are encoded concurrently.
	s.mu.RLock()
	defer s.mu.RUnlock()
	rp := s.repoOf(r)
	if rp == nil {
		notFound(w)
		return
	}
	c, ok := s.resolve(rp, r.PathValue("sha"))
	if !ok {
		notFound(w)
		return
	}
	files := rp.trees[c.SHA]
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	entries := []map[string]any{}
	dirs := map[string]bool{}
	for _, p := range paths {
		for d := p; strings.Contains(d, "/"); {
			d = d[:strings.LastIndex(d, "/")]
			if !dirs[d] {
				dirs[d] = true
				entries = append(entries, map[string]any{"path": d, "mode": "040000", "type": "tree", "sha": SHA("tree:" + d)})
			}
		}
		entries = append(entries, map[string]any{
			"path": p, "mode": "100644", "type": "blob", "sha": blobSHA(files[p]), "size": len(files[p]),
			"url": s.URL + "/repos/" + rp.fullName + "/git/blobs/" + blobSHA(files[p]),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sha": SHA("tree:" + c.SHA), "url": s.URL + r.URL.Path, "tree": entries, "truncated": false,
	})
}

func (s *Server) blob(w http.ResponseWriter, r *http.Request) {
	// Readers share the lock: answers are encoded concurrently.
	s.mu.RLock()
	defer s.mu.RUnlock()
	rp := s.repoOf(r)
	if rp == nil {
		notFound(w)
		return
	}
	want := r.PathValue("sha")
	for _, files := range rp.trees {
		for _, content := range files {
			if blobSHA(content) == want {
				writeJSON(w, http.StatusOK, map[string]any{
					"sha": want, "size": len(content), "encoding": "base64",
					"content": base64.StdEncoding.EncodeToString(content), "url": s.URL + r.URL.Path,
				})
				return
			}
		}
	}
	notFound(w)
}

func (s *Server) wikiPage(w http.ResponseWriter, r *http.Request) {
	page := strings.TrimSuffix(r.PathValue("page"), ".md")
	s.mu.Lock()
	content, ok := s.wiki[r.PathValue("owner")+"/"+r.PathValue("repo")+"/"+page]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "404: Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(content) //nolint:errcheck
}
