package paste

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// gistMaxPages is how deep GET /gists/public goes: 3,000 gists in pages of
// 100.
const gistMaxPages = 30

// gistCommentPages bounds the comments read per gist: 1,000 in pages of
// 100, the newest of a longer thread left unread.
const gistCommentPages = 10

// Gist reads GitHub's public gists through the crawler's shared GitHub client
// (its token pool and rate-limit handling apply). Listings carry no content;
// each gist is fetched with GET /gists/{id}, a file the API truncated (or
// left without content) is read from its raw_url, and the gist's comments,
// where it has any, with GET /gists/{id}/comments.
type Gist struct {
	cfg SourceConfig
	gh  *gh.Client
}

// NewGist returns the gist source.
func NewGist(cfg SourceConfig, client *gh.Client) *Gist { return &Gist{cfg: cfg, gh: client} }

// Name implements Source.
func (g *Gist) Name() string { return g.cfg.Name }

// Kind implements Source.
func (g *Gist) Kind() string { return KindGist }

// Interval implements Source.
func (g *Gist) Interval() time.Duration { return time.Duration(g.cfg.Interval) }

// FetchInterval is the configured spacing of fetches.
func (g *Gist) FetchInterval() time.Duration { return time.Duration(g.cfg.FetchInterval) }

type gistUser struct {
	Login string `json:"login"`
}

type gistFile struct {
	Filename  string `json:"filename"`
	RawURL    string `json:"raw_url"`
	Size      int64  `json:"size"`
	Content   string `json:"content"`
	Truncated bool   `json:"truncated"`
}

// gistJSON is a gist as the API returns it; older gists name their owner
// "user" instead of "owner", and go-github's Gist has no truncated flags.
type gistJSON struct {
	ID          string              `json:"id"`
	Description *string             `json:"description"`
	HTMLURL     string              `json:"html_url"`
	Owner       *gistUser           `json:"owner"`
	User        *gistUser           `json:"user"`
	Files       map[string]gistFile `json:"files"`
	Truncated   bool                `json:"truncated"` // the file list itself (over 300 files)
	Comments    int                 `json:"comments"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
}

func (j gistJSON) author() string {
	switch {
	case j.Owner != nil && j.Owner.Login != "":
		return j.Owner.Login
	case j.User != nil:
		return j.User.Login
	}
	return ""
}

// List implements Source: the newest public gists, since the checkpoint.
func (g *Gist) List(ctx context.Context, cp Checkpoint) (Listing, error) {
	var l Listing
	q := url.Values{"per_page": {"100"}}
	if !cp.LastPasteAt.IsZero() {
		q.Set("since", cp.LastPasteAt.UTC().Format(time.RFC3339))
	}
	pages := g.cfg.Limit
	if cp.LastPasteAt.IsZero() {
		// A first poll starts from now: the newest page, not 3,000 gists of
		// backlog that would spend the shared token budget.
		pages = 1
	}
	for page := 1; page <= pages; page++ {
		q.Set("page", fmt.Sprint(page))
		req, err := g.gh.NewRequest(http.MethodGet, "gists/public?"+q.Encode(), nil)
		if err != nil {
			return Listing{}, fmt.Errorf("build request: %w", err)
		}
		var gists []gistJSON
		resp, err := g.gh.Do(ctx, req, &gists)
		if err != nil {
			return Listing{}, fmt.Errorf("GET gists/public page %d: %w", page, ghError(err))
		}
		for _, j := range gists {
			if j.ID == "" || strings.ContainsAny(j.ID, "/?#") {
				l.Malformed++
				continue
			}
			l.Items = append(l.Items, g.item(j))
		}
		if resp.NextPage == 0 {
			// Everything since the checkpoint was listed.
			l.Exhausted = !cp.LastPasteAt.IsZero()
			break
		}
	}
	return l, nil
}

func (g *Gist) item(j gistJSON) Item {
	it := Item{ID: j.ID, Author: j.author(), URL: j.HTMLURL, Date: j.UpdatedAt.UTC()}
	if !j.UpdatedAt.IsZero() {
		it.Revision = j.UpdatedAt.UTC().Format(time.RFC3339)
	}
	if j.Description != nil {
		it.Title = *j.Description
	}
	if it.URL == "" {
		it.URL = "https://gist.github.com/" + j.ID
	}
	for _, f := range j.Files {
		it.Size += f.Size
	}
	return it
}

// Fetch implements Source: every file of the gist, one part each.
func (g *Gist) Fetch(ctx context.Context, it Item) ([]Part, error) {
	req, err := g.gh.NewRequest(http.MethodGet, "gists/"+url.PathEscape(it.ID), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	var j gistJSON
	if _, err := g.gh.Do(ctx, req, &j); err != nil {
		return nil, fmt.Errorf("GET gists/%s: %w", it.ID, ghError(err))
	}
	names := make([]string, 0, len(j.Files))
	for name := range j.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	page := j.HTMLURL
	if page == "" {
		page = it.URL
	}
	var parts []Part
	for i, name := range names {
		f := j.Files[name]
		if f.Filename == "" {
			f.Filename = name
		}
		p := Part{Name: f.Filename, URL: page + "#" + gistAnchor(f.Filename), Text: []byte(f.Content)}
		if f.Truncated || int64(len(f.Content)) < f.Size {
			body, truncated, err := g.raw(ctx, f.RawURL)
			if err != nil {
				// Errors are stored; a file name is text from the site.
				return nil, fmt.Errorf("gist %s file %d: %w", it.ID, i+1, err)
			}
			p.Text, p.Truncated = body, truncated
		}
		if int64(len(p.Text)) > g.cfg.MaxBytes {
			p.Text, p.Truncated = p.Text[:g.cfg.MaxBytes], true
		}
		parts = append(parts, p)
	}
	if j.Comments > 0 {
		cs, err := g.comments(ctx, it.ID, page)
		if err != nil {
			return nil, err
		}
		parts = append(parts, cs...)
	}
	return parts, nil
}

// comments returns a gist's comments, one part each, linked to their anchor
// on the gist page. People paste keys into comments as into files.
func (g *Gist) comments(ctx context.Context, id, page string) ([]Part, error) {
	var parts []Part
	opts := &gh.ListOptions{PerPage: 100, Page: 1}
	for range gistCommentPages {
		cs, resp, err := g.gh.Gists.ListComments(ctx, id, opts)
		if err != nil {
			return nil, fmt.Errorf("GET gists/%s/comments page %d: %w", id, opts.Page, ghError(err))
		}
		for _, c := range cs {
			if c == nil || c.ID == nil {
				continue
			}
			cid := strconv.FormatInt(c.GetID(), 10)
			p := Part{Name: "comment " + cid, URL: page + "#gistcomment-" + cid, Text: []byte(c.GetBody())}
			if int64(len(p.Text)) > g.cfg.MaxBytes {
				p.Text, p.Truncated = p.Text[:g.cfg.MaxBytes], true
			}
			parts = append(parts, p)
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return parts, nil
}

// raw reads a file's raw_url through the shared client. Only GitHub's gist
// hosts (or the API's own host, for GitHub Enterprise and fakes) are fetched.
func (g *Gist) raw(ctx context.Context, raw string) ([]byte, bool, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" {
		return nil, false, fmt.Errorf("raw_url %q: %w", raw, ErrMalformed)
	}
	switch u.Host {
	case "gist.githubusercontent.com", "gist.github.com", g.gh.BaseURL.Host:
	default:
		return nil, false, fmt.Errorf("raw_url on unexpected host %q: %w", u.Host, ErrMalformed)
	}
	return httpGet(ctx, g.gh.Client(), u.String(), g.cfg.MaxBytes)
}

// gistAnchor is GitHub's anchor for a file on a gist page ("file-main-go").
func gistAnchor(name string) string {
	var b strings.Builder
	b.WriteString("file-")
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// ghError maps go-github's errors to the package's sentinels.
func ghError(err error) error {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		switch er.Response.StatusCode {
		case http.StatusNotFound, http.StatusGone:
			return fmt.Errorf("%w: %w", err, ErrGone)
		case http.StatusUnauthorized:
			return fmt.Errorf("%w: %w", err, ErrUnauthorised)
		}
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", err, ErrMalformed)
	}
	return err
}
