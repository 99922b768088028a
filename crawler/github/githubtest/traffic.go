package githubtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Traffic generates synthetic public events in roughly GitHub's mix — half
// pushes (each a commit of one file, stored in the server so compare
// works), comments, pull requests and stars — with a secret planted in the
// text of every push patch, comment and pull request body it makes.
type Traffic struct {
	s      *Server
	secret string
	repos  int

	mu      sync.Mutex
	next    int64
	planted map[int64]bool
}

// NewTraffic returns a generator whose event ids start at firstID and whose
// pushes go to repos repositories ("synth/r0", …).
func (s *Server) NewTraffic(secret string, firstID int64, repos int) *Traffic {
	if repos <= 0 {
		repos = 50
	}
	t := &Traffic{s: s, secret: secret, repos: repos, next: firstID, planted: map[int64]bool{}}
	for r := range repos {
		name := fmt.Sprintf("synth/r%d", r)
		s.AddCommits(name, Commit{SHA: SHA(name + ":base"), Message: "initial", AuthorLogin: "octocat", Date: time.Now()})
		s.SetBranch(name, "main", SHA(name+":base"))
	}
	return t
}

// Planted reports whether event id carries the secret.
func (t *Traffic) Planted(id int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.planted[id]
}

// Make returns n new events, oldest first, and stores the commits their
// pushes point at.
func (t *Traffic) Make(n int) []json.RawMessage {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]json.RawMessage, 0, n)
	now := time.Now()
	for range n {
		id := t.next
		t.next++
		repo := fmt.Sprintf("synth/r%d", id%int64(t.repos))
		actor := fmt.Sprintf("dev%d", id%997)
		switch id % 10 {
		case 0, 1, 2, 3, 4:
			head := SHA(fmt.Sprintf("%s:%d", repo, id))
			var b strings.Builder
			for l := range 30 {
				if l == 20 {
					fmt.Fprintf(&b, "+export GITHUB_TOKEN=%s # event %d\n", t.secret, id)
					continue
				}
				fmt.Fprintf(&b, "+    value_%d_%d = compute(%d, \"setting-%d\")\n", id, l, l, l)
			}
			patch := "@@ -0,0 +1,30 @@\n" + strings.TrimSuffix(b.String(), "\n")
			t.s.AddCommits(repo, Commit{SHA: head, Parents: []string{SHA(repo + ":base")}, Message: fmt.Sprintf("change %d", id),
				AuthorLogin: actor, Date: now, Files: []File{{Path: fmt.Sprintf("config/app%d.env", id), Status: "added", Patch: patch}}})
			out = append(out, PushEvent(id, repo, actor, "refs/heads/main", SHA(repo+":base"), head, now))
			t.planted[id] = true
		case 5, 6, 7:
			out = append(out, CommentEvent(id, repo, actor, fmt.Sprintf("It fails for me too (%d):\n```\nGITHUB_TOKEN=%s\n```", id, t.secret), now))
			t.planted[id] = true
		case 8:
			out = append(out, PullRequestEvent(id, repo, actor, "Fix build", fmt.Sprintf("Uses %s for CI (%d)", t.secret, id), now))
			t.planted[id] = true
		default:
			out = append(out, Event(id, "WatchEvent", repo, actor, now, map[string]any{"action": "started"}))
		}
	}
	return out
}

// Run publishes total events at rate events per second (in ticks of 10 ms)
// until done or ctx ends, calling published with each batch's ids and time.
func (t *Traffic) Run(ctx context.Context, rate float64, total int, published func(ids []int64, at time.Time)) {
	const tick = 10 * time.Millisecond
	start := time.Now()
	sent := 0
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for sent < total {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		due := min(int(rate*time.Since(start).Seconds()), total)
		if due <= sent {
			continue
		}
		evs := t.Make(due - sent)
		t.s.Publish(evs...)
		at := time.Now()
		if published != nil {
			ids := make([]int64, len(evs))
			for i, raw := range evs {
				var h struct {
					ID string `json:"id"`
				}
				_ = json.Unmarshal(raw, &h)
				fmt.Sscan(h.ID, &ids[i])
			}
			published(ids, at)
		}
		sent = due
	}
}
