// Package slacktest is a fake Slack Web API on loopback for tests: the
// methods Leakwatch calls (chat.postMessage, chat.update, chat.postEphemeral,
// users.lookupByEmail, users.info, conversations.history,
// conversations.replies), real-format JSON answers, token checks
// (invalid_auth, token_revoked) and rate limiting (HTTP 429 with
// Retry-After). Point slack-go at it with slack.OptionAPIURL(s.APIURL()).
package slacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Message is a message as the fake stored it.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // the parent's ts for a threaded reply
	Text     string
	Blocks   json.RawMessage
	Metadata json.RawMessage
	Updates  int // chat.update calls on it
}

// Ephemeral is a message only one user sees.
type Ephemeral struct {
	Channel, User, Text string
}

// User is a workspace member.
type User struct {
	ID, Email, Name string
}

// Server is the fake.
type Server struct {
	srv *httptest.Server

	mu         sync.Mutex
	tokens     map[string]string // token → "" (valid) or an error code
	users      []User
	messages   []*Message
	ephemerals []Ephemeral
	calls      map[string]int
	rateLimit  map[string]int // method → number of upcoming 429s
	failures   map[string]int // method → number of upcoming 500s
	retryAfter int
	clock      int64
}

// New starts a fake accepting token.
func New(t testing.TB, token string) *Server {
	s := &Server{tokens: map[string]string{token: ""}, calls: map[string]int{}, rateLimit: map[string]int{},
		failures: map[string]int{}, retryAfter: 1, clock: 1_700_000_000}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// APIURL is the base for slack.OptionAPIURL (with its trailing slash).
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// AddUser adds a workspace member.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = append(s.users, u)
}

// RevokeToken makes every later call with token fail with token_revoked.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = "token_revoked"
}

// RateLimit makes the next n calls of method answer 429 with Retry-After
// seconds.
func (s *Server) RateLimit(method string, n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit[method] = n
	s.retryAfter = retryAfter
}

// Fail makes the next n calls of method answer HTTP 500 (an outage).
func (s *Server) Fail(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = n
}

// Calls counts the calls of method, answered or not.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Messages returns copies of the stored messages (threaded replies
// included), oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.messages))
	for _, m := range s.messages {
		out = append(out, *m)
	}
	return out
}

// TopLevel returns the messages of channel that are not replies.
func (s *Server) TopLevel(channel string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		if m.Channel == channel && m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

// Replies returns the threaded replies under ts.
func (s *Server) Replies(channel, ts string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		if m.Channel == channel && m.ThreadTS == ts {
			out = append(out, m)
		}
	}
	return out
}

// Ephemerals returns the ephemeral messages sent.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ephemeral(nil), s.ephemerals...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
	if s.rateLimit[method] > 0 {
		s.rateLimit[method]--
		w.Header().Set("Retry-After", fmt.Sprint(s.retryAfter))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if s.failures[method] > 0 {
		s.failures[method]--
		http.Error(w, "upstream unavailable", http.StatusInternalServerError)
		return
	}
	token := r.Form.Get("token")
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	code, known := s.tokens[token]
	if !known {
		code = "invalid_auth"
	}
	if code != "" {
		writeJSON(w, map[string]any{"ok": false, "error": code})
		return
	}
	switch method {
	case "chat.postMessage":
		s.postMessage(w, r)
	case "chat.update":
		s.update(w, r)
	case "chat.postEphemeral":
		s.ephemerals = append(s.ephemerals, Ephemeral{Channel: r.Form.Get("channel"), User: r.Form.Get("user"), Text: r.Form.Get("text")})
		writeJSON(w, map[string]any{"ok": true, "message_ts": s.nextTS()})
	case "users.lookupByEmail":
		for _, u := range s.users {
			if strings.EqualFold(u.Email, r.Form.Get("email")) {
				writeJSON(w, map[string]any{"ok": true, "user": userJSON(u)})
				return
			}
		}
		writeJSON(w, map[string]any{"ok": false, "error": "users_not_found"})
	case "users.info":
		for _, u := range s.users {
			if u.ID == r.Form.Get("user") {
				writeJSON(w, map[string]any{"ok": true, "user": userJSON(u)})
				return
			}
		}
		writeJSON(w, map[string]any{"ok": false, "error": "user_not_found"})
	case "conversations.history":
		s.history(w, r, "")
	case "conversations.replies":
		s.history(w, r, r.Form.Get("ts"))
	default:
		writeJSON(w, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

func (s *Server) nextTS() string {
	s.clock++
	return fmt.Sprintf("%d.000100", s.clock)
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	ch := r.Form.Get("channel")
	if ch == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	m := &Message{Channel: ch, TS: s.nextTS(), ThreadTS: r.Form.Get("thread_ts"), Text: r.Form.Get("text")}
	if b := r.Form.Get("blocks"); b != "" {
		m.Blocks = json.RawMessage(b)
	}
	if md := r.Form.Get("metadata"); md != "" {
		m.Metadata = json.RawMessage(md)
	}
	s.messages = append(s.messages, m)
	writeJSON(w, map[string]any{"ok": true, "channel": ch, "ts": m.TS, "message": messageJSON(m, true)})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	ch, ts := r.Form.Get("channel"), r.Form.Get("ts")
	for _, m := range s.messages {
		if m.Channel == ch && m.TS == ts {
			m.Text = r.Form.Get("text")
			if b := r.Form.Get("blocks"); b != "" {
				m.Blocks = json.RawMessage(b)
			}
			if md := r.Form.Get("metadata"); md != "" {
				m.Metadata = json.RawMessage(md)
			}
			m.Updates++
			writeJSON(w, map[string]any{"ok": true, "channel": ch, "ts": ts, "text": m.Text})
			return
		}
	}
	writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
}

// history answers conversations.history (thread "") and
// conversations.replies (the parent and its replies), newest first as
// Slack does for history.
func (s *Server) history(w http.ResponseWriter, r *http.Request, thread string) {
	ch := r.Form.Get("channel")
	withMeta := r.Form.Get("include_all_metadata") == "1" || r.Form.Get("include_all_metadata") == "true"
	var out []map[string]any
	for _, m := range s.messages {
		if m.Channel != ch {
			continue
		}
		if thread == "" && m.ThreadTS != "" {
			continue
		}
		if thread != "" && m.TS != thread && m.ThreadTS != thread {
			continue
		}
		out = append(out, messageJSON(m, withMeta))
	}
	if thread == "" {
		sort.SliceStable(out, func(i, j int) bool { return out[i]["ts"].(string) > out[j]["ts"].(string) })
	}
	writeJSON(w, map[string]any{"ok": true, "messages": out, "has_more": false})
}

func messageJSON(m *Message, withMeta bool) map[string]any {
	out := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "bot_id": "B0LEAKWATCH"}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if len(m.Blocks) > 0 {
		out["blocks"] = m.Blocks
	}
	if withMeta && len(m.Metadata) > 0 {
		out["metadata"] = m.Metadata
	}
	return out
}

func userJSON(u User) map[string]any {
	return map[string]any{"id": u.ID, "name": u.Name, "real_name": u.Name,
		"profile": map[string]any{"email": u.Email, "real_name": u.Name}}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
