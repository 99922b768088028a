// Package githubtest is a fake of the GitHub REST API for tests, in the
// manner of net/http/httptest: a real HTTP server on loopback serving
// real-format payloads (start from the recorded events under
// shared/corpora/github-events).
//
// The events timeline behaves like GitHub's: newest first, at most 300
// events, pages of per_page (default 30, max 100) linked with Link headers,
// an ETag per page honoured through If-None-Match (304, not counted against
// the rate limit), X-Poll-Interval, and x-ratelimit-* headers.
package githubtest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"time"
)

// TimelineMax is how many events a timeline holds.
const TimelineMax = 300

// Server is a fake GitHub API.
type Server struct {
	*httptest.Server

	mu           sync.Mutex
	timeline     []json.RawMessage // newest first
	pollInterval int
	rateLimit    int
	remaining    int
	requests     map[string]int
	notModified  int
}

// NewServer starts a fake GitHub API. Close it when done.
func NewServer() *Server {
	s := &Server{pollInterval: 60, rateLimit: 5000, remaining: 5000, requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", s.events)
	s.Server = httptest.NewServer(mux)
	return s
}

// APIURL is the base URL to give a go-github client (trailing slash included).
func (s *Server) APIURL() string { return s.URL + "/" }

// SetPollInterval sets the X-Poll-Interval the server sends, in seconds.
func (s *Server) SetPollInterval(secs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollInterval = secs
}

// Publish adds events to the timeline, given oldest first (as a GH Archive
// file lists them). The timeline keeps the newest TimelineMax.
func (s *Server) Publish(events ...json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range events {
		s.timeline = append([]json.RawMessage{ev}, s.timeline...)
	}
	if len(s.timeline) > TimelineMax {
		s.timeline = s.timeline[:TimelineMax]
	}
}

// Requests returns how many requests reached path (e.g. "/events").
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// NotModified returns how many conditional requests were answered 304.
func (s *Server) NotModified() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notModified
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[r.URL.Path]++

	perPage := 30
	if v, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	page := 1
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	start := (page - 1) * perPage
	var items []json.RawMessage
	if start < len(s.timeline) {
		items = s.timeline[start:min(start+perPage, len(s.timeline))]
	}
	body, err := json.Marshal(items)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if items == nil {
		body = []byte("[]")
	}
	sum := sha256.Sum256(body)
	etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`

	h := w.Header()
	h.Set("ETag", etag)
	h.Set("X-Poll-Interval", strconv.Itoa(s.pollInterval))
	h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
	lastPage := (min(len(s.timeline), TimelineMax) + perPage - 1) / perPage
	if lastPage > 1 && page < lastPage {
		link := func(p int, rel string) string {
			return fmt.Sprintf(`<%s/events?per_page=%d&page=%d>; rel="%s"`, s.URL, perPage, p, rel)
		}
		h.Set("Link", link(page+1, "next")+", "+link(lastPage, "last"))
	}
	if r.Header.Get("If-None-Match") == etag {
		// A 304 does not count against the rate limit.
		s.notModified++
		s.rateHeaders(h)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if s.remaining > 0 {
		s.remaining--
	}
	s.rateHeaders(h)
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.Write(body) //nolint:errcheck
}

func (s *Server) rateHeaders(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.rateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(s.remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.rateLimit-s.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

// LoadEvents reads recorded events from a JSON Lines file (GH Archive) or a
// JSON array (an API response), oldest first.
func LoadEvents(path string) ([]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var evs []json.RawMessage
		if err := json.Unmarshal(trimmed, &evs); err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		// API responses list newest first.
		for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
			evs[i], evs[j] = evs[j], evs[i]
		}
		return evs, nil
	}
	var evs []json.RawMessage
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, fmt.Errorf("%s: line %d is not JSON", path, len(evs)+1)
		}
		evs = append(evs, json.RawMessage(bytes.Clone(line)))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return evs, nil
}

// CommentEvent returns a real-format IssueCommentEvent whose comment body is
// body, for planting text in a timeline.
func CommentEvent(id int64, repo, actor, body string, at time.Time) json.RawMessage {
	ev := map[string]any{
		"id":   strconv.FormatInt(id, 10),
		"type": "IssueCommentEvent",
		"actor": map[string]any{
			"id": 1000 + id%1000, "login": actor, "display_login": actor,
			"url": "https://api.github.com/users/" + actor, "avatar_url": "https://avatars.githubusercontent.com/u/1?",
		},
		"repo": map[string]any{"id": 4242, "name": repo, "url": "https://api.github.com/repos/" + repo},
		"payload": map[string]any{
			"action": "created",
			"issue": map[string]any{
				"number": 7, "title": "Build fails", "state": "open",
				"html_url": "https://github.com/" + repo + "/issues/7",
			},
			"comment": map[string]any{
				"id": id, "body": body,
				"html_url": fmt.Sprintf("https://github.com/%s/issues/7#issuecomment-%d", repo, id),
				"user":     map[string]any{"login": actor},
			},
		},
		"public":     true,
		"created_at": at.UTC().Format(time.RFC3339),
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return raw
}
