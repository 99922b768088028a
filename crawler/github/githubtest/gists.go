package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// RevokeMax is how many credentials one /credentials/revoke call may carry.
const RevokeMax = 1000

// revoke is POST /credentials/revoke: unauthenticated only, at most 1,000
// credentials, 202 Accepted.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if tokenOf(r) != "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "This endpoint must be called without authentication."})
		return
	}
	var body struct {
		Credentials []string `json:"credentials"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"})
		return
	}
	if len(body.Credentials) == 0 || len(body.Credentials) > RevokeMax {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed: credentials must hold 1 to 1000 items"})
		return
	}
	s.mu.Lock()
	if s.revokeLeft == 0 {
		s.mu.Unlock()
		reset := time.Now().Add(time.Hour).Truncate(time.Second)
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"message": "API rate limit exceeded"})
		return
	}
	if s.revokeLeft > 0 {
		s.revokeLeft--
	}
	s.revoked = append(s.revoked, body.Credentials...)
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

// SetRevokeLimit lets /credentials/revoke accept n more calls, then answer
// 429 as GitHub does once an address has spent its hourly budget
// (negative: no limit, the default).
func (s *Server) SetRevokeLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLeft = n
}

// Revoked returns every credential /credentials/revoke accepted, in order.
func (s *Server) Revoked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.revoked...)
}

// LoadGistReplay serves the recorded public gist responses in dir (the
// pygithub-replay "extracted" folder): /gists/public pages 1–4, the
// since= listing, and the full gist 6296732.
func (s *Server) LoadGistReplay(dir string) error {
	var pages [][]json.RawMessage
	for i := 1; i <= 4; i++ {
		var page []json.RawMessage
		if err := readJSON(filepath.Join(dir, fmt.Sprintf("gists_GET_gists_public_page%d.json", i)), &page); err != nil {
			return err
		}
		pages = append(pages, page)
	}
	var since []json.RawMessage
	if err := readJSON(filepath.Join(dir, "gists_GET_gists_public_since_2018-10-02.json"), &since); err != nil {
		return err
	}
	var full json.RawMessage
	if err := readJSON(filepath.Join(dir, "gist_GET_gists_6296732.json"), &full); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gistPages, s.gistsSince = pages, since
	s.gists["6296732"] = full
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

func (s *Server) gistList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Query().Get("since") != "" {
		writeJSON(w, http.StatusOK, s.gistsSince)
		return
	}
	_, page := pageParams(r, 30, 100)
	items := []json.RawMessage{}
	if page <= len(s.gistPages) {
		items = s.gistPages[page-1]
	}
	s.setLink(w, r, 30, page, len(s.gistPages))
	writeJSON(w, http.StatusOK, items)
}

func (s *Server) gist(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	body, ok := s.gists[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, body)
}
