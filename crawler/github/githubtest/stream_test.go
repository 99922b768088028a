package githubtest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestStream: events arrive at the configured rate with dense ids, in
// GitHub's mix, pages shift between requests, planted events are served and
// marked, and Served lists every event with its created_at.
func TestStream(t *testing.T) {
	t.Parallel()
	s := NewServer()
	defer s.Close()
	if _, err := recordedTemplates(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	st, err := s.StartStream(StreamOpts{Rate: 400, PushShare: 0.4})
	if err != nil {
		t.Fatal(err)
	}
	st.Plant(func(id int64, at time.Time) json.RawMessage { return CommentEvent(id, "octo/app", "u", "planted", at) })
	time.Sleep(800 * time.Millisecond)
	_, body1 := get(t, s.URL+"/events?per_page=100&page=2", "t1", nil)
	time.Sleep(100 * time.Millisecond)
	_, body2 := get(t, s.URL+"/events?per_page=100&page=2", "t1", nil)
	time.Sleep(400 * time.Millisecond)
	st.Stop()
	elapsed := time.Since(started)
	served := s.Served("")
	// Never faster than the rate (slower only when the machine cannot make
	// events that fast, as under -race on a busy machine).
	if n, want := float64(len(served)), 400*elapsed.Seconds(); n > want+2 || n < 200 {
		t.Fatalf("%v events served in %v at 400/s", n, elapsed)
	}
	pushes, planted := 0, 0
	for i, ev := range served {
		if i > 0 && ev.ID != served[i-1].ID+1 {
			t.Fatalf("ids not dense: %d after %d", ev.ID, served[i-1].ID)
		}
		if ev.CreatedAt.IsZero() || ev.Type == "" {
			t.Fatalf("served event %+v lacks type or time", ev)
		}
		if ev.Type == "PushEvent" {
			pushes++
		}
		if ev.Planted {
			planted++
			if ev.Type != "IssueCommentEvent" {
				t.Fatalf("planted %+v", ev)
			}
		}
	}
	if share := float64(pushes) / float64(len(served)); share < 0.25 || share > 0.55 {
		t.Fatalf("push share %.2f, want about 0.4", share)
	}
	if planted != 1 {
		t.Fatalf("%d planted events served, want 1", planted)
	}
	first := func(body []byte) int64 {
		var evs []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &evs); err != nil || len(evs) == 0 {
			t.Fatalf("page: %v, %d events", err, len(evs))
		}
		id, _ := strconv.ParseInt(evs[0].ID, 10, 64)
		return id
	}
	if a, b := first(body1), first(body2); b <= a {
		t.Fatalf("page 2 did not shift between requests: %d then %d", a, b)
	}
	// A conditional request on an unchanged page is free; a new page costs one.
	resp, _ := get(t, s.URL+"/events?per_page=100", "t2", nil)
	resp2, _ := get(t, s.URL+"/events?per_page=100", "t2", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp2.StatusCode != http.StatusNotModified || resp2.Header.Get("X-Poll-Interval") != "60" {
		t.Fatalf("conditional request: %d, poll interval %q", resp2.StatusCode, resp2.Header.Get("X-Poll-Interval"))
	}
	u := s.Usage()["t2"]
	if u.Requests != 2 || u.Charged != 1 || u.NotModified != 1 || u.ByPath["/events"] != 2 {
		t.Fatalf("usage of t2 %+v", u)
	}
}

// TestStreamAnonymousLimit: without a token the 61st request in an hour gets
// GitHub's 403 with its rate-limit headers.
func TestStreamAnonymousLimit(t *testing.T) {
	t.Parallel()
	s := NewServer()
	defer s.Close()
	for i := range AnonymousLimit {
		if resp, _ := get(t, s.URL+"/events", "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, body := get(t, s.URL+"/events", "", nil)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("61st anonymous request: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if u := s.Usage()[""]; u.Charged != AnonymousLimit || u.Limited != 1 {
		t.Fatalf("anonymous usage %+v", u)
	}
}

// TestServedKeepsPublished: events given to Publish are listed by Served
// with their id, type and created_at, and their JSON when asked (an archive
// built from them matches what the timeline carried).
func TestServedKeepsPublished(t *testing.T) {
	t.Parallel()
	s := NewServer()
	defer s.Close()
	at := time.Date(2026, 12, 4, 13, 0, 5, 0, time.UTC)
	s.Publish(CommentEvent(7, "octo/app", "u", "one", at))
	s.KeepServedRaw(true)
	s.Publish(PushEvent(8, "octo/app", "u", "refs/heads/main", SHA("a"), SHA("b"), at))
	got := s.Served("")
	if len(got) != 2 || got[0].ID != 7 || got[0].Type != "IssueCommentEvent" || !got[0].CreatedAt.Equal(at) || got[0].Raw != nil ||
		got[1].ID != 8 || got[1].Type != "PushEvent" || len(got[1].Raw) == 0 {
		t.Fatalf("served %+v", got)
	}
	if len(s.Served("/orgs/acme/events")) != 0 {
		t.Fatal("another timeline's events listed")
	}
}
