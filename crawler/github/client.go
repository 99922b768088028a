package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// Client is a go-github client whose transport draws every request from a
// TokenPool. It is shared by every GitHub source (events, pushes, wikis,
// trees, and gists for the paste crawler).
type Client struct {
	*gh.Client
	// Tokens is the pool behind the client: budgets for health and metrics.
	Tokens *TokenPool
	raw    *url.URL
	http   *http.Client
	repos  *repoCache
}

// ClientConfig configures a Client.
type ClientConfig struct {
	BaseURL string   // REST API base, e.g. https://api.github.com/
	RawURL  string   // raw content host (wiki pages); default https://raw.githubusercontent.com/
	Tokens  []string // none: unauthenticated, 60 requests/hour
	// Transport sends requests (default: http.DefaultTransport's settings
	// with 128 idle connections per host).
	Transport http.RoundTripper
	// MaxWait is how long a request may wait for a parked token before
	// failing with *RateLimitedError (default 5s): pollers and jobs prefer to
	// reschedule over holding a connection.
	MaxWait time.Duration
	// Now and Sleep are the clock (tests inject a fake one).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
}

// NewClientWithConfig returns a Client.
func NewClientWithConfig(cfg ClientConfig) (*Client, error) {
	if cfg.Transport == nil {
		// Many fetch jobs talk to one host at once: keep their connections
		// (the default keeps 2 idle per host and re-dials the rest).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 128
		cfg.Transport = t
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 5 * time.Second
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.RawURL == "" {
		cfg.RawURL = "https://raw.githubusercontent.com/"
	}
	pool := NewTokenPool(cfg.Tokens, cfg.Now)
	tr := &poolTransport{pool: pool, next: cfg.Transport, maxWait: cfg.MaxWait,
		sleep: func(r *http.Request, d time.Duration) error { return cfg.Sleep(r.Context(), d) }}
	hc := &http.Client{Transport: tr, Timeout: cfg.Timeout}
	c := gh.NewClient(hc)
	base, err := absURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("GitHub API URL: %w", err)
	}
	raw, err := absURL(cfg.RawURL)
	if err != nil {
		return nil, fmt.Errorf("GitHub raw URL: %w", err)
	}
	c.BaseURL = base
	return &Client{Client: c, Tokens: pool, raw: raw, http: hc, repos: newRepoCache(cfg.Now)}, nil
}

func absURL(s string) (*url.URL, error) {
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute URL", s)
	}
	return u, nil
}

// ErrTooLarge is returned by Raw when content exceeds the limit asked for.
var ErrTooLarge = errors.New("content over the size limit")

// Raw fetches a path on the raw content host (wiki pages), at most limit
// bytes. A missing page is ErrNotFound; a larger one ErrTooLarge.
func (c *Client) Raw(ctx context.Context, path string, limit int64) ([]byte, error) {
	u, err := c.raw.Parse(strings.TrimPrefix(path, "/"))
	if err != nil {
		return nil, fmt.Errorf("raw path %q: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET raw %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("GET raw %s: %w", path, ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET raw %s: status %d", path, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read raw %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return b, nil
}

// ErrNotFound is a 404 from GitHub.
var ErrNotFound = errors.New("not found on GitHub")

// isStatus reports whether err is a GitHub error response with one of codes.
func isStatus(err error, codes ...int) bool {
	var er *gh.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return false
	}
	for _, c := range codes {
		if er.Response.StatusCode == c {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
