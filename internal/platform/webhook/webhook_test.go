package webhook

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	key, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateSigningKey()
	otherSecret, _ := GenerateSecret()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"revocation.requested"}`)
	headers := func(sig string, ts time.Time) http.Header {
		h := http.Header{}
		h.Set(HeaderID, "msg_1")
		h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(HeaderSignature, sig)
		return h
	}
	both, err := Sign("msg_1", now, body, secret, &key)
	if err != nil {
		t.Fatal(err)
	}
	onlyHMAC, _ := Sign("msg_1", now, body, secret, nil)
	onlyEd, _ := Sign("msg_1", now, body, "", &key)
	fixed := func() time.Time { return now.Add(time.Minute) }

	tests := []struct {
		name string
		v    Verifier
		h    http.Header
		body []byte
		want error
	}{
		{"hmac", Verifier{Secrets: []string{secret}, Now: fixed}, headers(onlyHMAC, now), body, nil},
		{"ed25519", Verifier{PublicKeys: []ed25519.PublicKey{key.Public()}, Now: fixed}, headers(onlyEd, now), body, nil},
		{"both, receiver knows only the public key", Verifier{PublicKeys: []ed25519.PublicKey{key.Public()}, Now: fixed}, headers(both, now), body, nil},
		{"both, receiver knows only the secret", Verifier{Secrets: []string{secret}, Now: fixed}, headers(both, now), body, nil},
		{"tampered body", Verifier{Secrets: []string{secret}, PublicKeys: []ed25519.PublicKey{key.Public()}, Now: fixed}, headers(both, now), []byte(`{"type":"x"}`), ErrInvalidSignature},
		{"wrong secret", Verifier{Secrets: []string{otherSecret}, Now: fixed}, headers(onlyHMAC, now), body, ErrInvalidSignature},
		{"wrong public key", Verifier{PublicKeys: []ed25519.PublicKey{other.Public()}, Now: fixed}, headers(onlyEd, now), body, ErrInvalidSignature},
		{"stale", Verifier{Secrets: []string{secret}, Now: func() time.Time { return now.Add(6 * time.Minute) }}, headers(onlyHMAC, now), body, ErrStaleTimestamp},
		{"from the future", Verifier{Secrets: []string{secret}, Now: func() time.Time { return now.Add(-6 * time.Minute) }}, headers(onlyHMAC, now), body, ErrStaleTimestamp},
		{"no headers", Verifier{Secrets: []string{secret}, Now: fixed}, http.Header{}, body, ErrMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.v.Verify(tt.h, tt.body); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("id is signed", func(t *testing.T) {
		t.Parallel()
		h := headers(both, now)
		h.Set(HeaderID, "msg_2")
		v := Verifier{Secrets: []string{secret}, PublicKeys: []ed25519.PublicKey{key.Public()}, Now: fixed}
		if err := v.Verify(h, body); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("Verify = %v", err)
		}
	})
}

func TestKeysRoundTrip(t *testing.T) {
	t.Parallel()
	k, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseSigningKey(k.String())
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID() != k.ID() || k2.PublicString() != k.PublicString() {
		t.Fatal("parsed key differs")
	}
	pub, err := ParsePublicKey(k.PublicString())
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	keys, err := ParseSigningKeys(k.String() + " , " + k2.String())
	if err != nil || len(keys) != 2 {
		t.Fatalf("ParseSigningKeys = %d, %v", len(keys), err)
	}
	for _, bad := range []string{"", "whsk_", "whsk_!!", "abc", "whsk_AAAA"} {
		if _, err := ParseSigningKey(bad); err == nil {
			t.Errorf("ParseSigningKey(%q) accepted", bad)
		}
	}
	if ValidSecret("whsec_short") || ValidSecret("nope") {
		t.Error("ValidSecret accepted a bad secret")
	}
}

func TestGuard(t *testing.T) {
	t.Parallel()
	allow, err := ParseAllowlist("127.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr    string
		guard   Guard
		refused bool
	}{
		{"8.8.8.8", Guard{}, false},
		{"2606:4700::1111", Guard{}, false},
		{"127.0.0.1", Guard{}, true},
		{"::1", Guard{}, true},
		{"10.1.2.3", Guard{}, true},
		{"172.16.0.1", Guard{}, true},
		{"192.168.1.1", Guard{}, true},
		{"169.254.169.254", Guard{}, true}, // cloud metadata
		{"fe80::1", Guard{}, true},
		{"fd00::1", Guard{}, true},
		{"100.64.0.1", Guard{}, true},
		{"0.0.0.0", Guard{}, true},
		{"224.0.0.1", Guard{}, true},
		{"::ffff:127.0.0.1", Guard{}, true},
		{"127.0.0.1", Guard{Allow: allow}, false},
		{"::1", Guard{Allow: allow}, false},
		{"10.0.0.1", Guard{Allow: allow}, true},
	}
	for _, tt := range tests {
		err := tt.guard.Check(netip.MustParseAddr(tt.addr))
		if refused := errors.Is(err, ErrForbiddenAddress); refused != tt.refused {
			t.Errorf("Check(%s) with allow %v = %v, want refused=%v", tt.addr, tt.guard.Allow, err, tt.refused)
		}
	}
	for _, bad := range []string{"ftp://example.com/", "/relative", "http://user:pw@example.com/", "http://169.254.169.254/latest"} {
		if err := (Guard{}).CheckURL(bad); err == nil {
			t.Errorf("CheckURL(%q) accepted", bad)
		}
	}
	if _, err := ParseAllowlist("nonsense"); err == nil {
		t.Error("ParseAllowlist accepted nonsense")
	}
}

// TestCheckTarget: the set-time check refuses every spelling of a local
// address; without the deployment's guard (nil) it lets literal addresses
// through for the dial-time check and the allowlist to decide.
func TestCheckTarget(t *testing.T) {
	t.Parallel()
	loop := &Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	tests := []struct {
		url               string
		strict, nilg, loo bool // refused by Guard{}, by a nil guard, by a loopback-allowing guard
	}{
		{"https://hooks.slack.com/services/T/B/X", false, false, false},
		{"https://example.com:8443/a?b=c", false, false, false},
		{"https://1.2.3.4/", false, false, false},
		{"http://127.0.0.1:8080/", true, false, false},
		{"http://[::ffff:127.0.0.1]/", true, false, false},
		{"http://[::ffff:7f00:1]/", true, false, false},
		{"http://169.254.169.254/latest", true, false, true},
		{"http://0.0.0.0/", true, false, true},
		{"http://2130706433/", true, true, true},
		{"http://0177.0.0.1/", true, true, true},
		{"http://0x7f.0.0.1/", true, true, true},
		{"http://127.1/", true, true, true},
		{"http://0x7f000001/", true, true, true},
		{"http://localhost/", true, true, true},
		{"http://LocalHost./", true, true, true},
		{"http://api.localhost/", true, true, true},
		{"http://[fe80::1%25eth0]/", true, true, true},
		{"http://user:pw@example.com/", true, true, true},
		{"ftp://example.com/", true, true, true},
		{"http:///nohost", true, true, true},
		{"http://%zz/", true, true, true},
		{"://missing-scheme", true, true, true},
	}
	for _, tt := range tests {
		for _, g := range []struct {
			guard   *Guard
			refused bool
		}{{&Guard{}, tt.strict}, {nil, tt.nilg}, {loop, tt.loo}} {
			err := g.guard.CheckTarget(tt.url)
			if (err != nil) != g.refused || (err != nil && !errors.Is(err, ErrInvalidURL)) {
				t.Errorf("CheckTarget(%q) with %v = %v, want refused=%v wrapping ErrInvalidURL", tt.url, g.guard, err, g.refused)
			}
		}
	}
}

func TestSender(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, _ := GenerateSigningKey()
	var got http.Header
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/ok", http.StatusFound)
			return
		}
		got = r.Header.Clone()
		gotBody, _ = io.ReadAll(r.Body)
		io.WriteString(w, `{"status":"revoked"}`) //nolint:errcheck
	}))
	t.Cleanup(srv.Close)
	loopback := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

	t.Run("signed post to an allowed address", func(t *testing.T) {
		s := NewSender(NewHTTPClient(loopback, 5*time.Second), loopback, &key, nil)
		r := s.Send(ctx, Message{ID: "msg_a", URL: srv.URL + "/ok", Body: []byte(`{"a":1}`)})
		if !r.OK() {
			t.Fatalf("Send = %+v", r)
		}
		v := Verifier{PublicKeys: []ed25519.PublicKey{key.Public()}}
		if err := v.Verify(got, gotBody); err != nil {
			t.Fatalf("receiver cannot verify: %v", err)
		}
		if got.Get(HeaderID) != "msg_a" || r.Excerpt() != `{"status":"revoked"}` {
			t.Fatalf("id %q, excerpt %q", got.Get(HeaderID), r.Excerpt())
		}
	})
	t.Run("loopback refused without the allowlist", func(t *testing.T) {
		s := NewSender(NewHTTPClient(Guard{}, 5*time.Second), Guard{}, &key, nil)
		r := s.Send(ctx, Message{ID: "msg_b", URL: srv.URL + "/ok", Body: []byte(`{}`)})
		if !errors.Is(r.Err, ErrForbiddenAddress) {
			t.Fatalf("Send = %+v, want refusal", r)
		}
	})
	t.Run("a name resolving to loopback is refused at dial time", func(t *testing.T) {
		s := NewSender(NewHTTPClient(Guard{}, 5*time.Second), Guard{}, &key, nil)
		u := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
		r := s.Send(ctx, Message{ID: "msg_c", URL: u + "/ok", Body: []byte(`{}`)})
		if !errors.Is(r.Err, ErrForbiddenAddress) {
			t.Fatalf("Send = %+v, want refusal", r)
		}
		if strings.Contains(r.Err.Error(), "localhost") {
			t.Fatalf("error names the URL: %v", r.Err)
		}
	})
	t.Run("redirects are not followed", func(t *testing.T) {
		s := NewSender(NewHTTPClient(loopback, 5*time.Second), loopback, &key, nil)
		r := s.Send(ctx, Message{ID: "msg_d", URL: srv.URL + "/redirect", Body: []byte(`{}`)})
		if r.StatusCode != http.StatusFound || r.OK() {
			t.Fatalf("Send = %+v, want the 302 itself", r)
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n        int
		rnd      float64
		min, max time.Duration
	}{
		{1, 0, 15 * time.Second, 15 * time.Second},
		{1, 0.999, 15 * time.Second, 30 * time.Second},
		{2, 0, 30 * time.Second, 30 * time.Second},
		{5, 0.5, 4 * time.Minute, 6 * time.Minute},
		{8, 0, 30 * time.Minute, 30 * time.Minute},
		{30, 0.999, 30 * time.Minute, time.Hour},
	}
	for _, tt := range tests {
		d := backoff(tt.n, func() float64 { return tt.rnd })
		if d < tt.min || d > tt.max {
			t.Errorf("backoff(%d, %v) = %v, want %v..%v", tt.n, tt.rnd, d, tt.min, tt.max)
		}
	}
}

func TestDeliveryLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	at := time.Now().UTC().Truncate(time.Second)
	d, err := EnsureDelivery(ctx, pool, Delivery{MessageID: "msg_x", Kind: "test", URL: "https://example.com/h", Payload: json.RawMessage(`{"n":1}`), CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	// A second ensure (a retried job) returns the same row and payload.
	d2, err := EnsureDelivery(ctx, pool, Delivery{MessageID: "msg_x", Kind: "test", URL: "https://example.com/h", Payload: json.RawMessage(`{"n":2}`), CreatedAt: at.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if d2.ID != d.ID || string(d2.Payload) != `{"n": 1}` || !d2.CreatedAt.Equal(at) {
		t.Fatalf("second ensure = %+v, want the first", d2)
	}
	if err := RecordAttempt(ctx, pool, d.ID, at, Result{Err: errors.New("timeout")}, StatusPending); err != nil {
		t.Fatal(err)
	}
	if err := RecordAttempt(ctx, pool, d.ID, at.Add(time.Minute), Result{StatusCode: 200, Body: []byte(`ok`), Latency: 12 * time.Millisecond}, StatusSucceeded); err != nil {
		t.Fatal(err)
	}
	as, err := Attempts(ctx, pool, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].Error != "timeout" || as[1].StatusCode != 200 || as[1].Response != "ok" || as[1].LatencyMS != 12 {
		t.Fatalf("attempts = %+v", as)
	}
	var status string
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT status, attempts FROM webhook_deliveries WHERE id = $1`, d.ID).Scan(&status, &attempts); err != nil {
		t.Fatal(err)
	}
	if status != StatusSucceeded || attempts != 2 {
		t.Fatalf("status %s attempts %d", status, attempts)
	}
}

func TestLoadOrCreateKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	first, err := LoadOrCreateKeys(ctx, pool, nil, nil)
	if err != nil || len(first) != 1 {
		t.Fatalf("first load: %d keys, %v", len(first), err)
	}
	again, err := LoadOrCreateKeys(ctx, pool, nil, nil)
	if err != nil || len(again) != 1 || again[0].ID() != first[0].ID() {
		t.Fatalf("second load differs: %v", err)
	}
	configured, _ := GenerateSigningKey()
	got, err := LoadOrCreateKeys(ctx, pool, nil, []SigningKey{configured})
	if err != nil || got[0].ID() != configured.ID() {
		t.Fatalf("configured key not used: %v", err)
	}
	pub := PublicKeys(append(got, first...))
	if len(pub) != 2 || !pub[0].Current || pub[1].Current || !strings.HasPrefix(pub[0].Key, "whpk_") {
		t.Fatalf("public keys %+v", pub)
	}
	if b, _ := json.Marshal(pub); strings.Contains(string(b), "whsk_") {
		t.Fatal("private key published")
	}
}

// TestSigningKeySealed: a key stored in plaintext before an encryption key
// was configured is sealed on the next load and still signs alike; a new
// encryption key put first re-seals it through ResealKeys.
func TestSigningKeySealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	stored := func() string {
		t.Helper()
		var s string
		if err := pool.QueryRow(ctx, `SELECT string_agg(private_key, ',') FROM webhook_signing_keys`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	plain, err := LoadOrCreateKeys(ctx, pool, nil, nil)
	if err != nil || !strings.HasPrefix(stored(), "whsk_") {
		t.Fatalf("without a key: %q %v", stored(), err)
	}
	box1, err := secretbox.Parse("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := LoadOrCreateKeys(ctx, pool, box1, nil)
	if err != nil || len(sealed) != 1 || sealed[0].String() != plain[0].String() {
		t.Fatalf("sealed load: %v", err)
	}
	if s := stored(); strings.Contains(s, "whsk_") || secretbox.KeyID(s) != "k1" {
		t.Fatalf("stored after load with a key: %.30q", s)
	}
	box2, err := secretbox.Parse("k2:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=,k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ResealKeys(ctx, pool, box2); err != nil || n != 1 || secretbox.KeyID(stored()) != "k2" {
		t.Fatalf("reseal: %d %v, key %s", n, err, secretbox.KeyID(stored()))
	}
	again, err := LoadOrCreateKeys(ctx, pool, box2, nil)
	if err != nil || again[0].ID() != plain[0].ID() {
		t.Fatalf("load after reseal: %v", err)
	}
	body := []byte(`{"type":"test"}`)
	sig, err := Sign("msg_1", time.Now(), body, "", &again[0])
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "msg_1")
	h.Set(HeaderTimestamp, strconv.FormatInt(time.Now().Unix(), 10))
	h.Set(HeaderSignature, sig)
	if err := (Verifier{PublicKeys: []ed25519.PublicKey{plain[0].Public()}}).Verify(h, body); err != nil {
		t.Fatalf("signature by the sealed key does not verify with the original public key: %v", err)
	}
}
