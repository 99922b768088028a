// Package revoke holds Leakwatch's built-in revokers: providers that let
// anyone holding a leaked credential revoke it. They are the one place where
// Leakwatch uses a leaked plaintext: the crawler pipeline hands the matched
// bytes straight from the scanned document to Revoke, synchronously, and
// nothing of them is stored, queued or logged; only the outcome is recorded.
package revoke

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// ErrRateLimited is returned when the provider's call budget is spent; the
// incident then goes through the ordinary containment path.
var ErrRateLimited = errors.New("revocation call budget exhausted")

// GitHubPrefixes are the token kinds GitHub's credential revocation API
// takes (personal access tokens classic and fine-grained, OAuth, user and
// installation tokens of GitHub Apps, refresh tokens).
var GitHubPrefixes = []string{"ghp_", "github_pat_", "gho_", "ghu_", "ghs_", "ghr_"}

// GitHub limits of POST /credentials/revoke.
const (
	GitHubBatchMax     = 1000
	GitHubCallsPerHour = 60
)

// GitHub revokes GitHub tokens through POST /credentials/revoke, an
// unauthenticated endpoint that revokes the tokens and notifies their owners.
type GitHub struct {
	baseURL string
	client  *http.Client
	now     func() time.Time

	budget Budget
}

// NewGitHub returns the GitHub revoker. baseURL is the REST API root
// ("https://api.github.com/"); client must not add authentication, which the
// endpoint refuses; nil: the guarded client (webhook.NewHTTPClient) with no
// allowlist, public addresses only. now may be nil.
func NewGitHub(baseURL string, client *http.Client, now func() time.Time) *GitHub {
	if client == nil {
		client = webhook.NewHTTPClient(webhook.Guard{}, 10*time.Second)
	}
	if now == nil {
		now = time.Now
	}
	return &GitHub{baseURL: strings.TrimRight(baseURL, "/") + "/", client: client, now: now,
		budget: &memoryBudget{limit: GitHubCallsPerHour}}
}

// WithBudget makes the revoker draw its calls from b, e.g. a PGBudget that
// every process of the deployment shares. It returns g.
func (g *GitHub) WithBudget(b Budget) *GitHub {
	g.budget = b
	return g
}

// Name implements crawler.Revoker.
func (g *GitHub) Name() string { return "github-credentials-api" }

// Accepts implements crawler.Revoker: a GitHub token of a known kind, made only of
// the characters GitHub uses.
func (g *GitHub) Accepts(provider string, token []byte) bool {
	if provider != "github" || len(token) < 20 || len(token) > 255 {
		return false
	}
	ok := false
	for _, p := range GitHubPrefixes {
		if bytes.HasPrefix(token, []byte(p)) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, c := range token {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Revoke implements crawler.Revoker, in batches of up to GitHubBatchMax tokens.
func (g *GitHub) Revoke(ctx context.Context, tokens [][]byte) error {
	for start := 0; start < len(tokens); start += GitHubBatchMax {
		end := min(start+GitHubBatchMax, len(tokens))
		if err := g.call(ctx, tokens[start:end]); err != nil {
			return err
		}
	}
	return nil
}

func (g *GitHub) call(ctx context.Context, tokens [][]byte) error {
	ok, err := g.budget.Take(ctx, g.now())
	if err != nil {
		return err
	}
	if !ok {
		return ErrRateLimited
	}
	// The body is built by hand, and wiped after the call, so the plaintext
	// does not linger in strings. Accepts guarantees nothing needs escaping.
	var body bytes.Buffer
	body.WriteString(`{"credentials":[`)
	for i, t := range tokens {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteByte('"')
		body.Write(t)
		body.WriteByte('"')
	}
	body.WriteString(`]}`)
	raw := body.Bytes()
	defer clear(raw)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.baseURL+"credentials/revoke", bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("build revocation request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := g.client.Do(req)
	if err != nil {
		// Transport errors never carry the body.
		return fmt.Errorf("GitHub credential revocation: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusForbidden && resp.Header.Get("X-RateLimit-Remaining") == "0":
		// GitHub counts per address: other processes behind the same one
		// would be refused too, so every process waits for the reset.
		if err := g.budget.Park(ctx, rateLimitReset(resp, g.now())); err != nil {
			return errors.Join(ErrRateLimited, err)
		}
		return ErrRateLimited
	default:
		return fmt.Errorf("GitHub credential revocation answered HTTP %d", resp.StatusCode)
	}
}

// rateLimitReset is when GitHub's budget comes back: X-RateLimit-Reset
// (Unix seconds), else Retry-After (seconds), else an hour from now.
func rateLimitReset(resp *http.Response, now time.Time) time.Time {
	if v, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil && v > now.Unix() {
		return time.Unix(v, 0)
	}
	if v, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && v > 0 {
		return now.Add(time.Duration(v) * time.Second)
	}
	return now.Add(time.Hour)
}
