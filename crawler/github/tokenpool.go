package github

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Assumed budgets before GitHub's first answer tells the real ones.
const (
	limitAuthenticated   = 5000
	limitUnauthenticated = 60
	// secondaryBackoffMin is the least a secondary limit without headers
	// parks a token; GitHub asks for "at least one minute", then backing off
	// exponentially.
	secondaryBackoffMin = time.Minute
	secondaryBackoffMax = time.Hour
)

// ErrRateLimited is wrapped by RateLimitedError.
var ErrRateLimited = errors.New("every GitHub token is out of budget")

// RateLimitedError says no token may send a request before Until.
type RateLimitedError struct {
	Until time.Time
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%v until %s", ErrRateLimited, e.Until.UTC().Format(time.RFC3339))
}

// Unwrap lets errors.Is(err, ErrRateLimited) work.
func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

// TokenBudget is the rate budget of one token as last seen. ID never holds
// the token: it is a short hash of it ("anonymous" when unauthenticated).
type TokenBudget struct {
	ID          string    `json:"id"`
	Limit       int       `json:"limit"`
	Remaining   int       `json:"remaining"`
	Reset       time.Time `json:"reset"`
	ParkedUntil time.Time `json:"parked_until"`
	ParkReason  string    `json:"park_reason,omitempty"`
	Requests    int64     `json:"requests"`
}

type token struct {
	TokenBudget
	secret   string
	inflight int
	backoff  time.Duration // last secondary-limit backoff
	// known is set by GitHub's first x-ratelimit-* answer; until then the
	// budget is a guess (another process may have spent it), so the token
	// carries one request at a time.
	known bool
}

// TokenPool spreads requests over tokens by remaining budget. A token is
// never used beyond its budget: each request reserves one unit before it is
// sent, GitHub's x-ratelimit-* headers correct the count, and a token with
// nothing left is parked until its reset. Rate-limit answers park the token
// for retry-after, until x-ratelimit-reset, or (secondary limits without
// headers) for at least a minute, doubling each time.
type TokenPool struct {
	mu     sync.Mutex
	tokens []*token
	now    func() time.Time
}

// NewTokenPool returns a pool of tokens; none means unauthenticated
// (60 requests/hour). now may be nil (time.Now).
func NewTokenPool(secrets []string, now func() time.Time) *TokenPool {
	if now == nil {
		now = time.Now
	}
	p := &TokenPool{now: now}
	for _, s := range secrets {
		sum := sha256.Sum256([]byte(s))
		p.tokens = append(p.tokens, &token{secret: s, TokenBudget: TokenBudget{
			ID: "tok-" + hex.EncodeToString(sum[:4]), Limit: limitAuthenticated, Remaining: limitAuthenticated,
		}})
	}
	if len(p.tokens) == 0 {
		p.tokens = []*token{{TokenBudget: TokenBudget{ID: "anonymous", Limit: limitUnauthenticated, Remaining: limitUnauthenticated}}}
	}
	return p
}

// Size returns how many tokens the pool holds (1 when unauthenticated).
func (p *TokenPool) Size() int { return len(p.tokens) }

// HourlyLimit returns the requests per hour all tokens together may send.
func (p *TokenPool) HourlyLimit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, t := range p.tokens {
		n += t.Limit
	}
	return n
}

// Authenticated reports whether the pool has tokens.
func (p *TokenPool) Authenticated() bool { return p.tokens[0].secret != "" }

// acquire reserves one request on the token with the most budget left, or
// returns when the first token becomes usable again.
func (p *TokenPool) acquire() (*token, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	var best *token
	var earliest time.Time
	for _, t := range p.tokens {
		if !t.Reset.IsZero() && !now.Before(t.Reset) && t.Remaining < t.Limit {
			// A new window has begun.
			t.Remaining = t.Limit
			t.Reset = time.Time{}
		}
		ready := t.ParkedUntil
		if t.Remaining <= 0 {
			r := t.Reset
			if r.IsZero() {
				r = now.Add(time.Minute)
			}
			if r.After(ready) {
				ready = r
			}
		}
		if ready.After(now) {
			if earliest.IsZero() || ready.Before(earliest) {
				earliest = ready
			}
			continue
		}
		if !t.known && t.inflight > 0 {
			// The first answer tells the real budget; wait for it.
			if earliest.IsZero() || now.Add(50*time.Millisecond).Before(earliest) {
				earliest = now.Add(50 * time.Millisecond)
			}
			continue
		}
		if best == nil || t.Remaining > best.Remaining {
			best = t
		}
	}
	if best == nil {
		return nil, earliest
	}
	best.Remaining--
	best.inflight++
	best.Requests++
	best.ParkReason = ""
	return best, time.Time{}
}

// observe updates a token from GitHub's answer and reports whether the
// answer was a rate limit (the request may be retried on another token).
func (p *TokenPool) observe(t *token, resp *http.Response, body []byte) (limited bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	t.inflight--
	h := resp.Header
	limit, errL := strconv.Atoi(h.Get("X-RateLimit-Limit"))
	remaining, errR := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	resetUnix, errS := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if resp.StatusCode == http.StatusNotModified {
		// A 304 costs nothing.
		t.Remaining++
	}
	if errL == nil && limit > 0 {
		t.Limit = limit
	}
	if errR == nil {
		t.known = true
		reset := t.Reset
		if errS == nil {
			reset = time.Unix(resetUnix, 0)
		}
		fresh := remaining - t.inflight
		if reset.After(t.Reset) || fresh < t.Remaining {
			// New window, or GitHub counted requests we did not see.
			t.Remaining = max(fresh, 0)
		}
		t.Reset = reset
	}
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		if resp.StatusCode < 300 || resp.StatusCode == http.StatusNotModified {
			t.backoff = 0
		}
		return false
	}
	retryAfter, errA := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After")))
	switch {
	case errR == nil && remaining == 0:
		until := t.Reset
		if until.IsZero() || until.Before(now) {
			until = now.Add(secondaryBackoffMin)
		}
		t.Remaining = 0
		t.park(until, "primary")
	case errA == nil && retryAfter >= 0:
		t.park(now.Add(time.Duration(retryAfter)*time.Second), "retry-after")
	case resp.StatusCode == http.StatusTooManyRequests || isSecondaryLimit(body):
		t.backoff = min(max(2*t.backoff, secondaryBackoffMin), secondaryBackoffMax)
		t.park(now.Add(t.backoff), "secondary")
	default:
		// A 403 for lack of permission, not a limit.
		return false
	}
	return true
}

func (t *token) park(until time.Time, reason string) {
	if until.After(t.ParkedUntil) {
		t.ParkedUntil = until
	}
	t.ParkReason = reason
}

func isSecondaryLimit(body []byte) bool {
	b := bytes.ToLower(body)
	return bytes.Contains(b, []byte("secondary rate limit")) || bytes.Contains(b, []byte("abuse")) ||
		bytes.Contains(b, []byte("rate limit exceeded"))
}

// Budgets returns every token's budget, most remaining first.
func (p *TokenPool) Budgets() []TokenBudget {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]TokenBudget, 0, len(p.tokens))
	for _, t := range p.tokens {
		out = append(out, t.TokenBudget)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Remaining > out[j].Remaining })
	return out
}

var (
	budgetRemainingDesc = prometheus.NewDesc("leakwatch_github_token_remaining", "Requests a GitHub token may still send in its window.", []string{"token"}, nil)
	budgetLimitDesc     = prometheus.NewDesc("leakwatch_github_token_limit", "Requests per hour a GitHub token may send.", []string{"token"}, nil)
	budgetParkedDesc    = prometheus.NewDesc("leakwatch_github_token_parked", "1 while a GitHub token is parked by a rate limit.", []string{"token"}, nil)
	budgetRequestsDesc  = prometheus.NewDesc("leakwatch_github_token_requests_total", "Requests sent with a GitHub token.", []string{"token"}, nil)
)

// Describe implements prometheus.Collector.
func (p *TokenPool) Describe(ch chan<- *prometheus.Desc) {
	ch <- budgetRemainingDesc
	ch <- budgetLimitDesc
	ch <- budgetParkedDesc
	ch <- budgetRequestsDesc
}

// Collect implements prometheus.Collector.
func (p *TokenPool) Collect(ch chan<- prometheus.Metric) {
	now := p.now()
	for _, b := range p.Budgets() {
		parked := 0.0
		if b.ParkedUntil.After(now) {
			parked = 1
		}
		ch <- prometheus.MustNewConstMetric(budgetRemainingDesc, prometheus.GaugeValue, float64(b.Remaining), b.ID)
		ch <- prometheus.MustNewConstMetric(budgetLimitDesc, prometheus.GaugeValue, float64(b.Limit), b.ID)
		ch <- prometheus.MustNewConstMetric(budgetParkedDesc, prometheus.GaugeValue, parked, b.ID)
		ch <- prometheus.MustNewConstMetric(budgetRequestsDesc, prometheus.CounterValue, float64(b.Requests), b.ID)
	}
}

// poolTransport sends each request with a token from the pool, retries a
// rate-limited GET on another token, and waits (up to maxWait) when every
// token is parked. It hides x-ratelimit-* headers from go-github, whose own
// bookkeeping would otherwise block every token when one runs out.
type poolTransport struct {
	pool    *TokenPool
	next    http.RoundTripper
	maxWait time.Duration
	sleep   func(r *http.Request, d time.Duration) error
}

func (t *poolTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	replayable := r.Body == nil || r.Body == http.NoBody || r.GetBody != nil
	for attempt := 0; ; attempt++ {
		tok, until := t.pool.acquire()
		if tok == nil {
			wait := until.Sub(t.pool.now())
			if wait > t.maxWait {
				return nil, &RateLimitedError{Until: until}
			}
			if err := t.sleep(r, wait); err != nil {
				return nil, err
			}
			continue
		}
		req := r.Clone(r.Context())
		if attempt > 0 && r.GetBody != nil {
			body, err := r.GetBody()
			if err != nil {
				return nil, fmt.Errorf("replay request body: %w", err)
			}
			req.Body = body
		}
		if tok.secret != "" {
			req.Header.Set("Authorization", "Bearer "+tok.secret)
		} else {
			req.Header.Del("Authorization")
		}
		resp, err := t.next.RoundTrip(req)
		if err != nil {
			t.pool.mu.Lock()
			tok.inflight--
			t.pool.mu.Unlock()
			return nil, err
		}
		var body []byte
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(body))
		}
		limited := t.pool.observe(tok, resp, body)
		for k := range resp.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-ratelimit-") || strings.EqualFold(k, "Retry-After") {
				resp.Header.Del(k)
			}
		}
		if !limited {
			return resp, nil
		}
		resp.Body.Close()
		if !replayable || attempt > 2*len(t.pool.tokens)+2 {
			_, until := t.pool.acquireProbe()
			return nil, &RateLimitedError{Until: until}
		}
	}
}

// acquireProbe returns when the next token frees up without reserving one.
func (p *TokenPool) acquireProbe() (bool, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	var earliest time.Time
	for _, t := range p.tokens {
		ready := t.ParkedUntil
		if t.Remaining <= 0 && t.Reset.After(ready) {
			ready = t.Reset
		}
		if !ready.After(now) {
			return true, now
		}
		if earliest.IsZero() || ready.Before(earliest) {
			earliest = ready
		}
	}
	return false, earliest
}
