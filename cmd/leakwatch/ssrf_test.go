package main

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/crawler/revoke"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
	"github.com/leakwatch/leakwatch/web"
)

// hitListener is a real HTTP server on a loopback address that counts the
// requests reaching it: the SSRF table's proof that nothing got through.
type hitListener struct {
	hits atomic.Int64
	port int
}

func listenHits(t *testing.T, addr string) *hitListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	h := &hitListener{port: ln.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h
}

// TestOutgoingRequestsSSRF sends every outgoing request type Serve makes,
// through the clients newOutbound and newGitHubClient build, to loopback in
// every spelling resolvers accept, to private, link-local and shared
// addresses, and through redirects from an allowed fake to each of them.
// The guard allowlists only the redirecting fake (127.0.0.2), as an
// operator's LEAKWATCH_WEBHOOK_ALLOW_NETS would; no request may reach the
// loopback listeners standing behind the forbidden addresses.
func TestOutgoingRequestsSSRF(t *testing.T) {
	t.Parallel()
	v4 := listenHits(t, "127.0.0.1:0")
	v6 := listenHits(t, "[::1]:0")
	p, p6 := strconv.Itoa(v4.port), strconv.Itoa(v6.port)
	targets := []string{
		"http://127.0.0.1:" + p + "/",
		"http://2130706433:" + p + "/",         // decimal
		"http://0177.0.0.1:" + p + "/",         // octal
		"http://0x7f.0.0.1:" + p + "/",         // hex
		"http://127.1:" + p + "/",              // short
		"http://localhost:" + p + "/",          // name
		"http://LOCALHOST.:" + p + "/",         // name, fully qualified
		"http://0.0.0.0:" + p + "/",            // unspecified: Linux connects it to loopback
		"http://[::ffff:127.0.0.1]:" + p + "/", // IPv4-mapped IPv6
		"http://[::ffff:7f00:1]:" + p + "/",
		"http://[::1]:" + p6 + "/",
		"http://10.0.0.1:" + p + "/",        // private
		"http://172.16.0.1:" + p + "/",      // private
		"http://192.168.1.1:" + p + "/",     // private
		"http://169.254.169.254:" + p + "/", // link-local: cloud metadata
		"http://[fe80::1]:" + p + "/",       // link-local
		"http://100.64.0.1:" + p + "/",      // shared (CGNAT)
		"http://[fd00::1]:" + p + "/",       // unique local
		"http://[::ffff:169.254.169.254]:" + p + "/",
	}

	// The allowed fake redirects /r/{status}/{base64url of target}/…, a form
	// that survives clients appending paths (Slack methods, GitHub routes,
	// OIDC's well-known path) to their base URL.
	redirLn, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	var redirHits atomic.Int64
	redir := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirHits.Add(1)
		parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/r/"), "/", 3)
		code, err := strconv.Atoi(parts[0])
		if len(parts) < 2 || err != nil {
			http.NotFound(w, r)
			return
		}
		to, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Location", string(to))
		w.WriteHeader(code)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = redir.Serve(redirLn) }()
	t.Cleanup(func() { _ = redir.Close() })
	redirBase := "http://" + redirLn.Addr().String() + "/r/"

	cfg := Config{WebhookAllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, WebhookTimeout: 2 * time.Second,
		GitHubRawURL: "https://raw.githubusercontent.com/"}
	out := newOutbound(cfg)
	key, err := webhook.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	sender := webhook.NewSender(out.hooks, out.guard, &key, nil)

	// Each request type, as Serve's wiring sends it, to one URL.
	types := map[string]func(ctx context.Context, u string){
		"event and revocation webhook": func(ctx context.Context, u string) {
			sender.Send(ctx, webhook.Message{ID: "msg_1", URL: u, Body: []byte(`{}`)})
		},
		"slack incoming and escalation webhook": func(ctx context.Context, u string) {
			_ = slack.PostWebhookCustomHTTPContext(ctx, u, out.slack, &slack.WebhookMessage{Text: "hi"})
		},
		"slack web api": func(ctx context.Context, u string) {
			api := slack.New("xoxb-1-2-abc", slack.OptionHTTPClient(out.slack), slack.OptionAPIURL(u))
			_, _, _ = api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false))
		},
		"github token revocation": func(ctx context.Context, u string) {
			_ = revoke.NewGitHub(u, out.githubRevoke, nil).Revoke(ctx, [][]byte{[]byte("ghp_" + "0123456789abcdefghijABCDEFGHIJ012345")})
		},
		"github api": func(ctx context.Context, u string) {
			c := cfg
			c.GitHubAPIURL = u
			gh, err := newGitHubClient(c, nil)
			if err != nil {
				t.Errorf("github client for %s: %v", u, err)
				return
			}
			_, _, _ = gh.Users.Get(ctx, "octocat")
		},
		"oidc discovery": func(ctx context.Context, u string) {
			_, _ = web.NewOIDC(ctx, web.OIDCConfig{Issuer: u, ClientID: "c", HTTPClient: out.oidc})
		},
		"paste feed listing": func(ctx context.Context, u string) {
			f := paste.NewFeed(paste.SourceConfig{Type: "feed", Name: "f", URL: u, Format: "rss", MaxBytes: 1 << 20}, out.paste)
			_, _ = f.List(ctx, paste.Checkpoint{})
		},
		"paste raw fetch": func(ctx context.Context, u string) {
			f := paste.NewFeed(paste.SourceConfig{Type: "feed", Name: "f", URL: redirBase, Format: "rss", MaxBytes: 1 << 20}, out.paste)
			_, _ = f.Fetch(ctx, paste.Item{ID: "1", RawURL: u})
		},
	}
	for name, send := range types {
		t.Run(name, func(t *testing.T) {
			before := v4.hits.Load() + v6.hits.Load()
			redirBefore := redirHits.Load()
			for _, target := range targets {
				urls := []string{target}
				for _, code := range []string{"302", "307"} {
					urls = append(urls, redirBase+code+"/"+base64.RawURLEncoding.EncodeToString([]byte(target))+"/")
				}
				for _, u := range urls {
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					send(ctx, u)
					cancel()
				}
			}
			if n := v4.hits.Load() + v6.hits.Load() - before; n != 0 {
				t.Errorf("%d requests reached a forbidden loopback listener", n)
			}
			// Without this, a client refusing everything would pass.
			if redirHits.Load() == redirBefore {
				t.Errorf("the allowed redirecting fake was never reached: the table proves nothing")
			}
		})
	}
}
