package pastetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// GistsMax is how many gists GET /gists/public reaches through paging.
const GistsMax = 3000

// Gists is a fake of GitHub's gist API: GET /gists/public (newest update
// first, per_page/page with Link headers, since=), GET /gists/{id} (files
// with content, truncated past a per-file limit like GitHub's 1 MB), GET
// /gists/{id}/comments (paged likewise) and the files' raw_url under /raw/. Recorded real responses can be loaded with
// LoadRecorded; Publish adds generated ones of the same shape.
type Gists struct {
	*httptest.Server
	faults
	list     []map[string]any          // listing entries, newest first
	full     map[string]map[string]any // id → GET /gists/{id} body
	raw      map[string]string         // path → raw text
	deleted  map[string]bool
	bodies   map[string][]byte           // id → verbatim GET /gists/{id} body
	comments map[string][]map[string]any // id → GET /gists/{id}/comments, all pages
}

// NewGists starts a fake gist API.
func NewGists() *Gists {
	g := &Gists{full: map[string]map[string]any{}, raw: map[string]string{}, deleted: map[string]bool{}, bodies: map[string][]byte{},
		comments: map[string][]map[string]any{}}
	g.requests = map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /gists/public", g.listing)
	mux.HandleFunc("GET /gists/{id}", g.gist)
	mux.HandleFunc("GET /gists/{id}/comments", g.gistComments)
	mux.HandleFunc("GET /raw/", g.rawFile)
	g.Server = newServer(mux)
	return g
}

// APIURL is the base URL for a go-github client (trailing slash included).
func (g *Gists) APIURL() string { return g.URL + "/" }

// LoadRecorded serves the recorded responses in dir (the pygithub-replay
// "extracted" folder): the four /gists/public pages as the listing and the
// full gist 6296732. Raw URLs are rewritten to this server.
func (g *Gists) LoadRecorded(dir string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := 1; i <= 4; i++ {
		var page []map[string]any
		if err := readJSON(filepath.Join(dir, fmt.Sprintf("gists_GET_gists_public_page%d.json", i)), &page); err != nil {
			return err
		}
		for _, e := range page {
			g.rewriteRaw(e)
		}
		g.list = append(g.list, page...)
	}
	var full map[string]any
	if err := readJSON(filepath.Join(dir, "gist_GET_gists_6296732.json"), &full); err != nil {
		return err
	}
	g.rewriteRaw(full)
	g.full["6296732"] = full
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// rewriteRaw points a gist's raw URLs at this server and serves the file
// content there when the body has it.
func (g *Gists) rewriteRaw(gist map[string]any) {
	files, _ := gist["files"].(map[string]any)
	for _, f := range files {
		file, _ := f.(map[string]any)
		raw, _ := file["raw_url"].(string)
		i := strings.Index(raw, "/raw/")
		if i < 0 {
			continue
		}
		file["raw_url"] = g.URL + raw[i:]
		if c, ok := file["content"].(string); ok {
			g.raw[raw[i:]] = c
		}
	}
}

// GistFile is one file of a published gist.
type GistFile struct {
	Name    string
	Content string
	// APILimit truncates the content in GET /gists/{id} to this many bytes
	// and sets "truncated" (GitHub does so past 1 MB); 0: no limit.
	APILimit int
}

// GistComment is a comment on a published gist.
type GistComment struct {
	ID   int64
	User string
	Body string
}

// Gist is a gist to publish.
type Gist struct {
	ID          string
	Owner       string
	Description string
	UpdatedAt   time.Time
	Files       []GistFile
	Comments    []GistComment // oldest first, as GitHub lists them
}

// Publish adds gists, given oldest first, in GitHub's current format.
func (g *Gists) Publish(gs ...Gist) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, x := range gs {
		at := x.UpdatedAt.UTC().Format(time.RFC3339)
		owner := map[string]any{"login": x.Owner, "id": 1000, "type": "User", "site_admin": false,
			"url": "https://api.github.com/users/" + x.Owner, "html_url": "https://github.com/" + x.Owner}
		base := func() map[string]any {
			return map[string]any{
				"url": g.URL + "/gists/" + x.ID, "forks_url": g.URL + "/gists/" + x.ID + "/forks",
				"commits_url": g.URL + "/gists/" + x.ID + "/commits", "id": x.ID, "node_id": "G_" + x.ID,
				"git_pull_url": "https://gist.github.com/" + x.ID + ".git", "git_push_url": "https://gist.github.com/" + x.ID + ".git",
				"html_url": "https://gist.github.com/" + x.ID, "public": true,
				"created_at": at, "updated_at": at, "description": x.Description, "comments": len(x.Comments),
				"user": nil, "comments_url": g.URL + "/gists/" + x.ID + "/comments", "owner": owner, "truncated": false,
			}
		}
		listed, full := base(), base()
		lf, ff := map[string]any{}, map[string]any{}
		for _, f := range x.Files {
			path := fmt.Sprintf("/raw/%s/%s/%s", x.ID, strconv.FormatInt(x.UpdatedAt.Unix(), 16), f.Name)
			g.raw[path] = f.Content
			meta := func() map[string]any {
				return map[string]any{"filename": f.Name, "type": "text/plain", "language": "Text",
					"raw_url": g.URL + path, "size": len(f.Content)}
			}
			lf[f.Name] = meta()
			m := meta()
			m["truncated"] = false
			m["content"] = f.Content
			if f.APILimit > 0 && len(f.Content) > f.APILimit {
				m["truncated"] = true
				m["content"] = f.Content[:f.APILimit]
			}
			ff[f.Name] = m
		}
		listed["files"], full["files"] = lf, ff
		g.list = append([]map[string]any{listed}, g.list...)
		g.full[x.ID] = full
		var cs []map[string]any
		for _, c := range x.Comments {
			cs = append(cs, map[string]any{
				"id": c.ID, "node_id": fmt.Sprintf("GC_%d", c.ID),
				"url":  fmt.Sprintf("%s/gists/%s/comments/%d", g.URL, x.ID, c.ID),
				"body": c.Body, "author_association": "NONE", "created_at": at, "updated_at": at,
				"user": map[string]any{"login": c.User, "id": 2000, "type": "User", "site_admin": false,
					"url": "https://api.github.com/users/" + c.User, "html_url": "https://github.com/" + c.User},
			})
		}
		g.comments[x.ID] = cs
	}
}

// ServeGistBody makes GET /gists/{id} answer 200 with body, verbatim (to
// serve malformed JSON).
func (g *Gists) ServeGistBody(id string, body []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bodies[id] = body
}

// Delete makes GET /gists/{id} answer 404 and drops the gist's listing.
func (g *Gists) Delete(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deleted[id] = true
}

func (g *Gists) listing(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.intercept(w, r) {
		return
	}
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			http.Error(w, `{"message":"Invalid request.\n\nInvalid since."}`, http.StatusUnprocessableEntity)
			return
		}
		since = t
	}
	var all []map[string]any
	for _, e := range g.list {
		id, _ := e["id"].(string)
		if g.deleted[id] {
			continue
		}
		if !since.IsZero() {
			at, _ := time.Parse(time.RFC3339, fmt.Sprint(e["updated_at"]))
			if at.Before(since) {
				continue
			}
		}
		all = append(all, e)
		if len(all) == GistsMax {
			break
		}
	}
	g.writePage(w, r, all)
}

// writePage answers with the page of all that r asks for (per_page, at
// most 100, default 30; page from 1), with GitHub's Link header.
func (g *Gists) writePage(w http.ResponseWriter, r *http.Request, all []map[string]any) {
	q := r.URL.Query()
	perPage := 30
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	page := 1
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	start := (page - 1) * perPage
	items := []map[string]any{}
	if start < len(all) {
		items = all[start:min(start+perPage, len(all))]
	}
	if last := (len(all) + perPage - 1) / perPage; page < last {
		link := func(p int, rel string) string {
			v := q
			v.Set("page", strconv.Itoa(p))
			return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, g.URL, r.URL.Path, v.Encode(), rel)
		}
		w.Header().Set("Link", link(page+1, "next")+", "+link(last, "last"))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(items) //nolint:errcheck
}

func (g *Gists) gist(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests["/gists/{id}"]++
	id := r.PathValue("id")
	if body, ok := g.bodies[id]; ok {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(body) //nolint:errcheck
		return
	}
	full, ok := g.full[id]
	if !ok || g.deleted[id] {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/gists/gists#get-a-gist","status":"404"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(full) //nolint:errcheck
}

func (g *Gists) gistComments(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests["/gists/{id}/comments"]++
	id := r.PathValue("id")
	if _, ok := g.full[id]; !ok || g.deleted[id] {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/gists/comments#list-gist-comments","status":"404"}`)
		return
	}
	g.writePage(w, r, g.comments[id])
}

func (g *Gists) rawFile(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests["/raw"]++
	text, ok := g.raw[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, text)
}
