// Package githubtest is a fake of the GitHub REST API for tests, in the
// manner of net/http/httptest: a real HTTP server on loopback serving
// real-format payloads (start from the recorded events: Recorded).
//
// Timelines (/events, /orgs/{org}/events, /users/{u}/events/public,
// /repos/{o}/{r}/events) behave like GitHub's: newest first, at most 300
// events, pages of per_page (default 30, max 100) linked with Link headers
// and cut from the live timeline at request time (so they shift between a
// poll's requests), an ETag per page honoured through If-None-Match (304,
// not counted against the rate limit), X-Poll-Interval (60, as GitHub
// sends), and x-ratelimit-* headers. StartStream publishes a stream at
// GitHub's rate from the recorded events; Served lists every event a
// timeline carried, and Usage what each token spent.
//
// Every token (the Authorization header; none is "anonymous", 60/hour) has
// its own budget; a request beyond it gets GitHub's 403. Secondary limits
// (403 or 429, with or without retry-after) can be injected.
//
// Repositories hold commits with patches (compare, commit, commit list),
// branches, trees and blobs, and wiki pages on the raw host (RawURL). There
// are also /credentials/revoke and the public gists endpoints.
package githubtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TimelineMax is how many events a timeline holds.
const TimelineMax = 300

// DefaultLimit is the hourly budget of a token; AnonymousLimit of no token.
const (
	DefaultLimit   = 5000
	AnonymousLimit = 60
)

// PublicEvents is the path of the global timeline.
const PublicEvents = "/events"

type budget struct {
	limit, remaining int
	reset            time.Time
}

type injected struct {
	status     int
	retryAfter int // < 0: no header
	body       string
}

// Server is a fake GitHub API.
type Server struct {
	*httptest.Server

	mu           sync.RWMutex
	timelines    map[string][]json.RawMessage // newest first
	pollInterval int
	limit        int
	budgets      map[string]*budget
	inject       []injected
	requests     map[string]int
	byToken      map[string]int
	overBudget   int
	notModified  int
	repos        map[string]*repo
	wiki         map[string][]byte // "owner/repo/Page" → content
	revoked      []string
	revokeLeft   int // /credentials/revoke calls left; negative: unlimited
	gists        map[string]json.RawMessage
	gistPages    [][]json.RawMessage
	gistsSince   []json.RawMessage
	latency      time.Duration
	window       time.Duration // rate-limit window; 0 is GitHub's hour (SetRateWindow)
	archive      archive       // hourly GH Archive files (archive.go)
	usage        map[string]*TokenUsage
	streams      []*Stream
	served       map[string][]ServedEvent
	keepRaw      bool
	onTimeline   func(r *http.Request)
}

// TokenUsage is what one token ("" for none) spent.
type TokenUsage struct {
	Requests    int            // every request that reached the server
	Charged     int            // requests that cost budget (not 304s, not 403s)
	NotModified int            // 304s: free
	Limited     int            // 403s for a spent budget
	ByPath      map[string]int // requests by URL path
}

// NewServer starts a fake GitHub API. Close it when done.
func NewServer() *Server {
	s := &Server{
		timelines: map[string][]json.RawMessage{}, pollInterval: 60, limit: DefaultLimit,
		budgets: map[string]*budget{}, requests: map[string]int{}, byToken: map[string]int{},
		repos: map[string]*repo{}, wiki: map[string][]byte{}, gists: map[string]json.RawMessage{},
		revokeLeft: -1, usage: map[string]*TokenUsage{}, served: map[string][]ServedEvent{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /orgs/{org}/events", s.events)
	mux.HandleFunc("GET /users/{user}/events/public", s.events)
	mux.HandleFunc("GET /repos/{owner}/{repo}/events", s.events)
	mux.HandleFunc("GET /repos/{owner}/{repo}", s.repo)
	mux.HandleFunc("GET /repos/{owner}/{repo}/branches/{branch}", s.branch)
	mux.HandleFunc("GET /repos/{owner}/{repo}/commits", s.commitList)
	mux.HandleFunc("GET /repos/{owner}/{repo}/commits/{sha}", s.commit)
	mux.HandleFunc("GET /repos/{owner}/{repo}/compare/{basehead}", s.compare)
	mux.HandleFunc("GET /repos/{owner}/{repo}/git/trees/{sha}", s.tree)
	mux.HandleFunc("GET /repos/{owner}/{repo}/git/blobs/{sha}", s.blob)
	mux.HandleFunc("GET /raw/wiki/{owner}/{repo}/{page}", s.wikiPage)
	mux.HandleFunc("POST /credentials/revoke", s.revoke)
	mux.HandleFunc("GET /gists/public", s.gistList)
	mux.HandleFunc("GET /gists/{id}", s.gist)
	s.Server = httptest.NewServer(s.limited(mux))
	return s
}

// Close stops every stream, then the server.
func (s *Server) Close() {
	s.mu.Lock()
	streams := s.streams
	s.mu.Unlock()
	for _, st := range streams {
		st.Stop()
	}
	s.Server.Close()
}

// APIURL is the base URL to give a go-github client (trailing slash included).
func (s *Server) APIURL() string { return s.URL + "/" }

// RawURL is the base of the raw content host (wiki pages), as
// raw.githubusercontent.com is for github.com.
func (s *Server) RawURL() string { return s.URL + "/raw/" }

// SetPollInterval sets the X-Poll-Interval the server sends, in seconds.
func (s *Server) SetPollInterval(secs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollInterval = secs
}

// SetLatency delays every answer by d (benchmarks model the network).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetRateLimit sets the hourly budget of every token from now on (tokens
// already seen keep theirs unless reset).
func (s *Server) SetRateLimit(limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = limit
	s.budgets = map[string]*budget{}
}

// InjectSecondaryLimit makes the next request fail with status (403 or 429)
// as a secondary rate limit, with a retry-after header of retryAfter seconds
// when retryAfter ≥ 0 and none otherwise.
func (s *Server) InjectSecondaryLimit(status, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inject = append(s.inject, injected{status: status, retryAfter: retryAfter,
		body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`})
}

// Publish adds events to the global timeline, given oldest first (as a GH
// Archive file lists them). The timeline keeps the newest TimelineMax.
func (s *Server) Publish(events ...json.RawMessage) { s.PublishTo(PublicEvents, events...) }

// PublishTo adds events to the timeline at path (e.g. "/orgs/acme/events").
func (s *Server) PublishTo(path string, events ...json.RawMessage) {
	s.publish(path, events, servedOf(events))
}

// OnTimelineRequest calls fn before each timeline request is served (tests
// publish between a poll's page requests with it); nil removes it.
func (s *Server) OnTimelineRequest(fn func(r *http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onTimeline = fn
}

// Requests returns how many requests reached path (e.g. "/events").
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// RequestsByToken returns how many requests each token sent ("" for none).
func (s *Server) RequestsByToken() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.byToken))
	for k, v := range s.byToken {
		out[k] = v
	}
	return out
}

// Usage returns what each token ("" for none) spent.
func (s *Server) Usage() map[string]TokenUsage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]TokenUsage, len(s.usage))
	for k, u := range s.usage {
		c := *u
		c.ByPath = make(map[string]int, len(u.ByPath))
		for p, n := range u.ByPath {
			c.ByPath[p] = n
		}
		out[k] = c
	}
	return out
}

// OverBudget returns how many requests arrived on a token with no budget
// left (each answered with GitHub's 403).
func (s *Server) OverBudget() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overBudget
}

// NotModified returns how many conditional requests were answered 304.
func (s *Server) NotModified() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notModified
}

func tokenOf(r *http.Request) string {
	a := r.Header.Get("Authorization")
	for _, p := range []string{"Bearer ", "bearer ", "token "} {
		if strings.HasPrefix(a, p) {
			return strings.TrimSpace(a[len(p):])
		}
	}
	return ""
}

// limited counts the request against its token's budget, answering 403 when
// there is none left and serving injected secondary limits.
func (s *Server) limited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		lat := s.latency
		s.mu.Unlock()
		if lat > 0 {
			time.Sleep(lat)
		}
		if r.URL.Path == "/credentials/revoke" || strings.HasPrefix(r.URL.Path, "/raw/") {
			// Not part of the core REST budget.
			s.mu.Lock()
			s.requests[r.URL.Path]++
			s.mu.Unlock()
			next.ServeHTTP(w, r)
			return
		}
		tok := tokenOf(r)
		s.mu.Lock()
		s.requests[r.URL.Path]++
		s.byToken[tok]++
		u := s.usage[tok]
		if u == nil {
			u = &TokenUsage{ByPath: map[string]int{}}
			s.usage[tok] = u
		}
		u.Requests++
		u.ByPath[r.URL.Path]++
		b := s.budgets[tok]
		now := time.Now()
		if b == nil || !now.Before(b.reset) {
			limit := s.limit
			if tok == "" {
				limit = min(limit, AnonymousLimit)
			}
			window := s.window
			if window <= 0 {
				window = time.Hour
			}
			b = &budget{limit: limit, remaining: limit, reset: now.Add(window).Truncate(time.Second)}
			s.budgets[tok] = b
		}
		h := w.Header()
		setRate := func() {
			h.Set("X-RateLimit-Limit", strconv.Itoa(b.limit))
			h.Set("X-RateLimit-Remaining", strconv.Itoa(b.remaining))
			h.Set("X-RateLimit-Used", strconv.Itoa(b.limit-b.remaining))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(b.reset.Unix(), 10))
			h.Set("X-RateLimit-Resource", "core")
		}
		if len(s.inject) > 0 {
			in := s.inject[0]
			s.inject = s.inject[1:]
			setRate()
			s.mu.Unlock()
			if in.retryAfter >= 0 {
				h.Set("Retry-After", strconv.Itoa(in.retryAfter))
			}
			writeJSON(w, in.status, json.RawMessage(in.body))
			return
		}
		if b.remaining <= 0 {
			s.overBudget++
			u.Limited++
			setRate()
			s.mu.Unlock()
			writeJSON(w, http.StatusForbidden, map[string]string{
				"message":           "API rate limit exceeded for user ID 1.",
				"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-rate-limits",
			})
			return
		}
		// Charged now; a 304 refunds below (it costs nothing on GitHub).
		b.remaining--
		u.Charged++
		setRate()
		s.mu.Unlock()
		rw := &refundWriter{ResponseWriter: w, refund: func() {
			s.mu.Lock()
			b.remaining++
			u.Charged--
			u.NotModified++
			h.Set("X-RateLimit-Remaining", strconv.Itoa(b.remaining))
			h.Set("X-RateLimit-Used", strconv.Itoa(b.limit-b.remaining))
			s.mu.Unlock()
		}}
		next.ServeHTTP(rw, r)
	})
}

type refundWriter struct {
	http.ResponseWriter
	refund func()
}

func (w *refundWriter) WriteHeader(code int) {
	if code == http.StatusNotModified {
		w.refund()
	}
	w.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]string{
		"message": "Not Found", "documentation_url": "https://docs.github.com/rest",
	})
}

// pageParams reads per_page (default def, at most max) and page.
func pageParams(r *http.Request, def, max int) (perPage, page int) {
	perPage = def
	if v, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, max)
	}
	page = 1
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	return perPage, page
}

// setLink writes GitHub's Link header for page of last.
func (s *Server) setLink(w http.ResponseWriter, r *http.Request, perPage, page, last int) {
	if last <= 1 {
		return
	}
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("per_page", strconv.Itoa(perPage))
		q.Set("page", strconv.Itoa(p))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, s.URL, r.URL.Path, q.Encode(), rel)
	}
	var parts []string
	if page < last {
		parts = append(parts, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		parts = append(parts, link(1, "first"), link(page-1, "prev"))
	}
	if len(parts) > 0 {
		w.Header().Set("Link", strings.Join(parts, ", "))
	}
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	perPage, page := pageParams(r, 30, 100)
	s.mu.Lock()
	hook := s.onTimeline
	s.mu.Unlock()
	if hook != nil {
		hook(r)
	}
	s.mu.Lock()
	tl := s.timelines[r.URL.Path]
	interval := s.pollInterval
	start := (page - 1) * perPage
	var items []json.RawMessage
	if start < len(tl) {
		items = tl[start:min(start+perPage, len(tl))]
	}
	body, err := json.Marshal(items)
	lastPage := (len(tl) + perPage - 1) / perPage
	s.mu.Unlock()
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
	h.Set("X-Poll-Interval", strconv.Itoa(interval))
	h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
	s.setLink(w, r, perPage, page, lastPage)
	if r.Header.Get("If-None-Match") == etag {
		s.mu.Lock()
		s.notModified++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.Write(body) //nolint:errcheck
}

// recordedSample is 800 real public events from GH Archive, 2021-07-21
// 06:00–09:00 UTC (provenance and licence in testdata/README.md). It is
// embedded so that tests and `leakwatch demo` replay real payloads without
// reading anything outside the repository.
//
//go:embed testdata/gharchive-2021-07-21-few-hours.json.gz
var recordedSample []byte

// Recorded returns the embedded GH Archive sample, oldest first.
func Recorded() ([]json.RawMessage, error) {
	zr, err := gzip.NewReader(bytes.NewReader(recordedSample))
	if err != nil {
		return nil, fmt.Errorf("open recorded sample: %w", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("read recorded sample: %w", err)
	}
	return parseEvents("recorded sample", data)
}

func parseEvents(path string, data []byte) ([]json.RawMessage, error) {
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
