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
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned for a URL whose host is, or resolves to,
// an address outgoing webhooks may not reach.
var ErrForbiddenAddress = errors.New("address not allowed for outgoing webhooks")

// cgnat is shared address space (RFC 6598), internal to carriers and clouds.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Guard decides which addresses outgoing requests may reach: public unicast
// addresses, plus whatever Allow lists.
type Guard struct {
	Allow []netip.Prefix
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

// CheckURL refuses non-http(s) URLs and hosts that are forbidden literal
// addresses. Names are checked again at connect time, on the address
// actually dialled, so DNS tricks cannot get around the guard.
func (g Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("webhook URL must be an absolute http(s) URL")
	}
	if u.User != nil {
		return errors.New("webhook URL must not carry credentials")
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		return g.Check(a)
	}
	return nil
}

// NewHTTPClient returns a client that dials only addresses g allows and
// never follows redirects (a 3xx is the answer).
func NewHTTPClient(g Guard, timeout time.Duration) *http.Client {
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
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the guard
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
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
