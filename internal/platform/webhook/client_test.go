package webhook

import (
	"net/http"
	"net/netip"
	"net/url"
	"testing"
)

// TestGuardProxy: with an egress proxy, URLs are still checked before
// anything is sent, allowlisted addresses are reached directly and every
// other host goes through the proxy; without one, nothing is proxied
// (HTTPS_PROXY is not read).
func TestGuardProxy(t *testing.T) {
	proxy, _ := url.Parse("http://127.0.0.1:3128")
	g := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Proxy: proxy}
	for _, tc := range []struct {
		url     string
		want    *url.URL
		refused bool
	}{
		{"https://hooks.slack.com/services/T/B/x", proxy, false},
		{"http://127.0.0.1:8080/events", nil, false},
		{"http://169.254.169.254/latest/meta-data", nil, true},
		{"http://localhost/", nil, true},
		{"http://2130706433/", nil, true},
		{"http://[::ffff:10.0.0.1]/", nil, true},
	} {
		req, err := http.NewRequest(http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.proxyFor(req)
		if tc.refused != (err != nil) || got != tc.want {
			t.Errorf("%s: proxy %v, error %v", tc.url, got, err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "https://hooks.slack.com/x", nil)
	t.Setenv("HTTPS_PROXY", "http://10.0.0.1:3128")
	if got, err := (Guard{}).proxyFor(req); got != nil || err != nil {
		t.Errorf("no proxy configured: %v, %v", got, err)
	}
}
