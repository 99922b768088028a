package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned for a URL whose host is, or resolves to,
// an address outgoing requests may not reach.
var ErrForbiddenAddress = errors.New("address not allowed for outgoing requests")

// ErrInvalidURL wraps every refusal of CheckURL and CheckTarget, so callers
// setting a URL can answer 422 whatever the reason.
var ErrInvalidURL = errors.New("invalid outgoing URL")

// cgnat is shared address space (RFC 6598), internal to carriers and clouds.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Guard decides which addresses outgoing requests may reach: public unicast
// addresses, plus whatever Allow lists.
type Guard struct {
	Allow []netip.Prefix
	// Proxy, if set, is the deployment's egress proxy: requests to hosts
	// other than literal addresses in Allow go through it (its address
	// must itself be allowed). The guard then still refuses every URL
	// CheckURL refuses before anything is sent, but a name that resolves
	// to an internal address is for the proxy to refuse: it resolves it.
	Proxy *url.URL
}

// proxyFor is the transport's Proxy function: it checks the request's URL
// (each redirect hop too) and picks the egress proxy, if any.
func (g Guard) proxyFor(req *http.Request) (*url.URL, error) {
	if g.Proxy == nil {
		return nil, nil
	}
	if err := g.CheckURL(req.URL.String()); err != nil {
		return nil, err
	}
	if a, err := netip.ParseAddr(strings.Trim(req.URL.Hostname(), "[]")); err == nil {
		for _, p := range g.Allow {
			if p.Contains(a.Unmap()) {
				return nil, nil // an allowed internal address: reached directly
			}
		}
	}
	return g.Proxy, nil
}

// ParseAllowlist reads comma-separated CIDR prefixes or addresses.
func ParseAllowlist(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range bytes.Split([]byte(s), []byte(",")) {
		p := string(bytes.TrimSpace(part))
		if p == "" {
			continue
		}
		if pfx, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR prefix nor an address", p)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Check returns ErrForbiddenAddress for private, loopback, link-local,
// multicast, unspecified and shared addresses not in the allowlist.
func (g Guard) Check(a netip.Addr) error {
	a = a.Unmap()
	for _, p := range g.Allow {
		if p.Contains(a) {
			return nil
		}
	}
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || cgnat.Contains(a) {
		return fmt.Errorf("%s: %w", a, ErrForbiddenAddress)
	}
	return nil
}

// CheckURL refuses non-http(s) URLs, URLs with credentials, names of the
// local host ("localhost", "*.localhost"), IPv4 addresses in any form but
// dotted decimal (2130706433, 0177.0.0.1, 127.1, 0x7f.1: resolvers read them
// as loopback), and literal addresses the guard forbids. Other names are
// checked again at connect time, on the address actually dialled, so DNS
// tricks cannot get around the guard. Every error wraps ErrInvalidURL.
func (g Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%w: must be an absolute http(s) URL", ErrInvalidURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: must not carry credentials", ErrInvalidURL)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return fmt.Errorf("%w: must name a host", ErrInvalidURL)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return fmt.Errorf("%w: must not carry an IPv6 zone", ErrInvalidURL)
		}
		if err := g.Check(a); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidURL, err)
		}
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w: %s: %w", ErrInvalidURL, host, ErrForbiddenAddress)
	}
	if numericHost(host) {
		return fmt.Errorf("%w: write an IPv4 address as four decimal numbers", ErrInvalidURL)
	}
	return nil
}

// numericHost reports whether a host that is not a dotted-decimal address
// still reads as one to inet_aton-style resolvers: its last label is a
// number (decimal, octal or 0x hex). No top-level domain is numeric.
func numericHost(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") {
		last = last[2:]
		return last == "" || strings.Trim(last, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// CheckTarget validates a URL a tenant sets (Slack webhooks, revocation
// endpoints, event webhooks): CheckURL against g, the deployment's guard.
// A nil g (tests and tools built without the deployment settings) still
// refuses every form CheckURL refuses except literal addresses, which a
// deployment's allowlist may permit; the dial-time check stays the last
// word either way.
func (g *Guard) CheckTarget(raw string) error {
	if g != nil {
		return g.CheckURL(raw)
	}
	if err := (Guard{}).CheckURL(raw); err != nil {
		u, perr := url.Parse(raw)
		if perr != nil {
			return err
		}
		if _, perr := netip.ParseAddr(u.Hostname()); perr == nil && errors.Is(err, ErrForbiddenAddress) {
			return nil
		}
		return err
	}
	return nil
}

// NewHTTPClient is the one constructor of HTTP clients for outgoing
// requests: Slack (Web API, incoming and escalation webhooks), event
// webhooks, revocation requests, OIDC discovery and paste fetches use it;
// the GitHub API and GH Archive clients wrap its NewTransport. Its client dials only addresses g allows
// (checked on the address actually dialled, after DNS), uses no proxy, and
// never follows redirects: a 3xx is the answer, so an allowed host cannot
// bounce a request to an internal one.
func NewHTTPClient(g Guard, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     NewTransport(g, timeout),
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// FollowRedirects makes c follow up to max redirects, each hop's URL
// checked with g.CheckURL and its address checked again when dialled. For
// fetches from sites that move their content (paste sites, OIDC issuers);
// webhooks never follow. It returns c.
func FollowRedirects(c *http.Client, g Guard, max int) *http.Client {
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > max {
			return fmt.Errorf("more than %d redirects", max)
		}
		return g.CheckURL(req.URL.String())
	}
	return c
}

// NewTransport is the guarded transport under NewHTTPClient, for clients
// that must wrap it (the GitHub client's token pool) or tune its pool of
// idle connections. A client built on it that follows redirects has every
// hop's address checked again when it is dialled.
func NewTransport(g Guard, responseTimeout time.Duration) *http.Transport {
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%s: %w", address, ErrForbiddenAddress)
			}
			return g.Check(ap.Addr())
		},
	}
	return &http.Transport{
		// Without an egress proxy, none: a proxy would dial for us, past
		// the guard (HTTPS_PROXY is not read).
		Proxy:                 g.proxyFor,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: responseTimeout,
	}
}

// Message is one webhook to deliver.
type Message struct {
	ID         string // webhook-id: the same on every retry
	URL        string
	Body       []byte // JSON
	HMACSecret string // optional per-endpoint secret for the v1 signature
}

// Result is the outcome of one attempt.
type Result struct {
	StatusCode int // 0: no response
	Latency    time.Duration
	Body       []byte // the response body, up to MaxResponse bytes
	Err        error  // transport error, refused address, …; nil when a response came
}

// OK reports a 2xx answer.
func (r Result) OK() bool { return r.Err == nil && r.StatusCode >= 200 && r.StatusCode < 300 }

// Excerpt is the start of the response body, for the delivery log.
func (r Result) Excerpt() string {
	const n = 512
	b := r.Body
	if len(b) > n {
		b = b[:n]
	}
	return string(bytes.ToValidUTF8(b, nil))
}

// MaxResponse bounds how much of a response is read.
const MaxResponse = 64 << 10

// Sender signs and posts messages.
type Sender struct {
	client *http.Client
	guard  Guard
	key    *SigningKey
	now    func() time.Time
}

// NewSender returns a Sender posting through client (NewHTTPClient(guard,
// …) in production) and signing with key when not nil. now may be nil.
func NewSender(client *http.Client, guard Guard, key *SigningKey, now func() time.Time) *Sender {
	if now == nil {
		now = time.Now
	}
	return &Sender{client: client, guard: guard, key: key, now: now}
}

// Send makes one attempt. It never returns the URL in errors: webhook URLs
// may carry tokens.
func (s *Sender) Send(ctx context.Context, m Message) Result {
	if err := s.guard.CheckURL(m.URL); err != nil {
		return Result{Err: redact(err)}
	}
	ts := s.now()
	sig, err := Sign(m.ID, ts, m.Body, m.HMACSecret, s.key)
	if err != nil {
		return Result{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		return Result{Err: errors.New("build webhook request")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Leakwatch-Webhooks/1")
	req.Header.Set(HeaderID, m.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return Result{Latency: time.Since(start), Err: redact(err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	return Result{StatusCode: resp.StatusCode, Latency: time.Since(start), Body: body}
}

// redact drops the URL from transport errors, keeping the cause.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, ErrForbiddenAddress) {
		return ErrForbiddenAddress
	}
	if ue == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err // our own validation error, which names no URL
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("timeout")
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Errorf("%s failed", oe.Op)
	}
	return errors.New("request failed")
}

// Retry timing.
const (
	BackoffBase = 30 * time.Second
	BackoffMax  = time.Hour
	GiveUpAfter = 24 * time.Hour
)

// Backoff is the wait after the n-th failed attempt (n ≥ 1): exponential
// from BackoffBase, capped at BackoffMax, with "equal jitter" (half fixed,
// half random) so receivers coming back up are not hit by a thundering herd.
func Backoff(n int) time.Duration {
	return backoff(n, rand.Float64)
}

func backoff(n int, rnd func() float64) time.Duration {
	d := BackoffBase
	for i := 1; i < n && d < BackoffMax; i++ {
		d *= 2
	}
	d = min(d, BackoffMax)
	return d/2 + time.Duration(rnd()*float64(d/2))
}
