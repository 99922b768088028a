package github

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// repoCacheTTL and repoCacheMax bound the repository cache: a default
// branch, visibility or reach an hour old is good enough to pick a compare
// base or a severity.
const (
	repoCacheTTL = time.Hour
	repoCacheMax = 50_000
)

// repoCache remembers GET /repos/{owner}/{repo} answers for every user of a
// Client: the push fetcher (default branch of a new branch's repository),
// the tree scanner and the exposure lookup share one request per
// repository and hour. Concurrent misses for one repository wait for a
// single request.
type repoCache struct {
	mu       sync.Mutex
	entries  map[string]repoEntry
	inflight map[string]*repoCall
	now      func() time.Time
}

type repoEntry struct {
	repo *gh.Repository // nil: not found (404 or 451)
	at   time.Time
}

type repoCall struct {
	done chan struct{}
	repo *gh.Repository
	err  error
}

// repository returns the repository, from the cache when fresh. A
// repository GitHub does not show (404, 451) is remembered too: isGone
// reports its error.
func (c *Client) repository(ctx context.Context, owner, name string) (*gh.Repository, error) {
	rc := c.repos
	full := owner + "/" + name
	rc.mu.Lock()
	if e, ok := rc.entries[full]; ok && rc.now().Sub(e.at) < repoCacheTTL {
		rc.mu.Unlock()
		if e.repo == nil {
			return nil, fmt.Errorf("get repository %s: %w", full, ErrNotFound)
		}
		return e.repo, nil
	}
	if call, ok := rc.inflight[full]; ok {
		rc.mu.Unlock()
		select {
		case <-call.done:
			return call.repo, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := &repoCall{done: make(chan struct{})}
	rc.inflight[full] = call
	rc.mu.Unlock()

	repo, _, err := c.Repositories.Get(ctx, owner, name)
	gone := isStatus(err, 404, 451)
	if err != nil {
		err = fmt.Errorf("get repository %s: %w", full, err)
	}
	rc.mu.Lock()
	delete(rc.inflight, full)
	if err == nil || gone {
		if len(rc.entries) >= repoCacheMax {
			clear(rc.entries)
		}
		if gone {
			repo = nil
		}
		rc.entries[full] = repoEntry{repo: repo, at: rc.now()}
	}
	call.repo, call.err = repo, err
	rc.mu.Unlock()
	close(call.done)
	return repo, err
}

func newRepoCache(now func() time.Time) *repoCache {
	if now == nil {
		now = time.Now
	}
	return &repoCache{entries: map[string]repoEntry{}, inflight: map[string]*repoCall{}, now: now}
}

// isGone reports whether err says a repository or commit is not on GitHub
// (any more): a 404 or 451, or a cached not-found.
func isGone(err error) bool { return isStatus(err, 404, 451) || errors.Is(err, ErrNotFound) }
