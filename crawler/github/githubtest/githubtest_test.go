package githubtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const replay = "testdata/pygithub-replay"

func get(t *testing.T, url, token string, h map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body) //nolint:errcheck
	return resp, buf.Bytes()
}

func TestTimelinePagesETagAndBudget(t *testing.T) {
	t.Parallel()
	s := NewServer()
	defer s.Close()
	s.SetPollInterval(42)
	for id := int64(1); id <= 350; id++ {
		s.Publish(CommentEvent(id, "o/r", "a", "hi", time.Now()))
	}
	resp, body := get(t, s.URL+"/events?per_page=100", "tok", nil)
	var page []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page) != 100 || page[0].ID != "350" {
		t.Fatalf("page 1: %d events, first %v, err %v", len(page), page, err)
	}
	if !strings.Contains(resp.Header.Get("Link"), `page=2&per_page=100>; rel="next"`) || !strings.Contains(resp.Header.Get("Link"), `page=3&per_page=100>; rel="last"`) {
		t.Fatalf("Link = %q: the timeline holds 300 events, 3 pages", resp.Header.Get("Link"))
	}
	if resp.Header.Get("X-Poll-Interval") != "42" || resp.Header.Get("X-RateLimit-Remaining") != fmt.Sprint(DefaultLimit-1) {
		t.Fatalf("headers %v", resp.Header)
	}
	resp, _ = get(t, s.URL+"/events?per_page=100", "tok", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp.StatusCode != http.StatusNotModified || resp.Header.Get("X-RateLimit-Remaining") != fmt.Sprint(DefaultLimit-1) {
		t.Fatalf("conditional request: %d, remaining %s; want a free 304", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}
	s.InjectSecondaryLimit(http.StatusTooManyRequests, 30)
	if resp, _ = get(t, s.URL+"/events", "tok", nil); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "30" {
		t.Fatalf("injected limit: %d %v", resp.StatusCode, resp.Header)
	}
	s.SetRateLimit(1)
	get(t, s.URL+"/events", "other", nil)
	if resp, _ = get(t, s.URL+"/events", "other", nil); resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-RateLimit-Remaining") != "0" || s.OverBudget() != 1 {
		t.Fatalf("over budget: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestRevokeCredentials(t *testing.T) {
	t.Parallel()
	s := NewServer()
	defer s.Close()
	post := func(token string, creds []string) int {
		b, _ := json.Marshal(map[string]any{"credentials": creds})
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/credentials/revoke", bytes.NewReader(b))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("", []string{"ghp_one", "ghp_two"}); got != http.StatusAccepted {
		t.Fatalf("revoke: %d, want 202", got)
	}
	if got := post("tok", []string{"ghp_x"}); got != http.StatusForbidden {
		t.Fatalf("authenticated revoke: %d, want 403", got)
	}
	if got := post("", make([]string, RevokeMax+1)); got != http.StatusUnprocessableEntity {
		t.Fatalf("1,001 credentials: %d, want 422", got)
	}
	if r := s.Revoked(); len(r) != 2 || r[0] != "ghp_one" {
		t.Fatalf("revoked %v", r)
	}
}

func TestGistReplay(t *testing.T) {
	t.Parallel()
	s := NewServer()
	defer s.Close()
	if err := s.LoadGistReplay(replay); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, s.URL+"/gists/public?page=1", "tok", nil)
	var list []struct {
		ID    string                     `json:"id"`
		Files map[string]json.RawMessage `json:"files"`
	}
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 30 || list[0].ID != "2729695" {
		t.Fatalf("page 1: %d gists, err %v", len(list), err)
	}
	if !strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Fatalf("Link = %q", resp.Header.Get("Link"))
	}
	_, body = get(t, s.URL+"/gists/public?since=2018-10-02T00:00:00Z", "tok", nil)
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 5 {
		t.Fatalf("since: %d gists, err %v", len(list), err)
	}
	resp, body = get(t, s.URL+"/gists/6296732", "tok", nil)
	var g struct {
		Files map[string]struct {
			Content string `json:"content"`
		} `json:"files"`
	}
	if err := json.Unmarshal(body, &g); err != nil || resp.StatusCode != http.StatusOK || len(g.Files) == 0 {
		t.Fatalf("gist: %d, err %v", resp.StatusCode, err)
	}
	for _, f := range g.Files {
		if len(f.Content) < 1000 {
			t.Fatalf("gist content %d bytes, want the full file", len(f.Content))
		}
	}
	if resp, _ = get(t, s.URL+"/gists/404", "tok", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing gist: %d", resp.StatusCode)
	}
}
