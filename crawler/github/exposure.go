package github

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
)

// RepoExposure tells the visibility and reach of a GitHub document's
// repository for incident severity: GET /repos/{owner}/{repo} gives
// private/visibility, stargazers_count and forks_count. Answers are cached
// per repository, so a burst of findings in one repository costs one call
// of the token pool's budget.
type RepoExposure struct {
	client *Client
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cachedExposure
}

type cachedExposure struct {
	e     crawler.Exposure
	known bool
	at    time.Time
}

// exposureCacheMax bounds the cache; it is emptied when full (findings are
// rare, so it only fills over a long run).
const exposureCacheMax = 10_000

// NewRepoExposure returns a RepoExposure that caches answers for ttl
// (default one hour).
func NewRepoExposure(c *Client, ttl time.Duration) *RepoExposure {
	if ttl <= 0 {
		ttl = time.Hour
	}
	return &RepoExposure{client: c, ttl: ttl, now: time.Now, cache: map[string]cachedExposure{}}
}

// Exposure implements crawler.Exposer for documents from GitHub events and
// fetches. Other sources, and repositories GitHub no longer shows (deleted,
// or private to our tokens), are unknown.
func (r *RepoExposure) Exposure(ctx context.Context, d *crawler.Document) (crawler.Exposure, bool, error) {
	owner, name, ok := strings.Cut(d.Repo, "/")
	if d.Source != "github" || !ok || owner == "" || name == "" {
		return crawler.Exposure{}, false, nil
	}
	now := r.now()
	r.mu.Lock()
	c, hit := r.cache[d.Repo]
	r.mu.Unlock()
	if hit && now.Sub(c.at) < r.ttl {
		return c.e, c.known, nil
	}
	// The client's repository cache is shared with the push fetcher: a new
	// branch's lookup of its default branch answers this one too.
	repo, err := r.client.repository(ctx, owner, name)
	switch {
	case isGone(err):
		c = cachedExposure{at: now}
	case err != nil:
		return crawler.Exposure{}, false, err
	default:
		v := repo.GetVisibility()
		c = cachedExposure{at: now, known: true, e: crawler.Exposure{
			Private: repo.GetPrivate() || v == "private" || v == "internal",
			Reach:   repo.GetStargazersCount() + repo.GetForksCount(),
		}}
	}
	r.mu.Lock()
	if len(r.cache) >= exposureCacheMax {
		clear(r.cache)
	}
	r.cache[d.Repo] = c
	r.mu.Unlock()
	return c.e, c.known, nil
}
