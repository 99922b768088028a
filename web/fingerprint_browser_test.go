package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/matcher"
)

// chromium returns the path of a Chromium binary, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary found (apt-get install -y chromium): the browser-side fingerprint test needs one")
	return ""
}

func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts,
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// browserSecrets cover every branch of the format: provider prefixes, no
// prefix, the short window of a weak secret, the 8-byte window of kinds w
// and u, PEM keys with odd wrapping, and non-ASCII bytes.
var browserSecrets = []struct {
	secret    string
	allowWeak bool
}{
	{"ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3Mf6Jp0Ks2Ea9T", false},
	{"github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789abcdefGHIJKLMNOPqrstuvwx", false},
	{"AKIAZ7QW3ER5TY8UI2OPXK4M", false},
	// Random AWS key IDs the strength check used to refuse: a chance "USER",
	// a chance repeat of "7VQV" (matcher.strengthOf).
	{"AKIALXUSEREAGDLBXRSV", false},
	{"AKIACNOM7VQVMFFF7VQV", false},
	{"xoxb-2948573910-5839201748-Kd8Fj3Lq9Wm2Xz7Vb4Nc1Hy6", false},
	{"sk_live_51HqLyjWDarjtT1zdp7dcXzSx4bYQm9e8", false},
	{"SG.Zq8Wm3Xr7Tn2Vb5Kc9Hd4L.f0Pq6Ys1Ue_Rk3Jm8Nb2Vc7Xz4Lq9Wt5", false},
	{"Zq8Wm3Xr7Tn2Vb5Kc9Hd4Lf0Pq6Ys1Ue", false},
	{"Zq8Wm3Xr7Tn2", true},
	{"ghp_R8xk2Lq9", true},
	{"pässwörd-ÄÖÜ-密钥-Zq8Wm3Xr7Tn2Vb5Kc9", true},
	// Kind w, long and short, a passphrase; a token prefix and then a byte
	// no token holds; kind u.
	{"correct horse!battery staple", false},
	{"winter!2024#q", true},
	{"ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3!", true},
	{"ünïcödé-pässphrase-zq8wm3xr7tn2", true},
	{"-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\r\nQyNTUxOQAAACDhWnJ0Yd4m7Y4sVq1pK0m2p3b5n8s9t2u4v6w8x0y1zAAAAJgAAAAA\r\n-----END OPENSSH PRIVATE KEY-----\r\n", false},
	{"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFc\n-----END RSA PRIVATE KEY-----", false},
	{`"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49AwEHoUQDQgAE\nn8Xm0pYrT2u4v6w8x0y1zA==\n-----END EC PRIVATE KEY-----\n"`, false},
}

// TestBrowserFingerprintMatchesGo computes fingerprints in headless
// Chromium with web/static/fingerprint.js (WebCrypto + BigInt) and requires
// them to equal matcher.Compute's, so any drift of either side fails. It
// then registers and rotates a key through the keys page and checks that
// the server received the fingerprint and never the secret.
func TestBrowserFingerprintMatchesGo(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	b := setup(t)

	// Record every request body the server receives.
	var mu sync.Mutex
	var received bytes.Buffer
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		received.WriteString(r.URL.RawQuery)
		received.Write(body)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		b.srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(rec.Close)

	org := b.mustOrg(t, "acme")
	u := b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	link, err := b.auth.NewLoginLink(context.Background(), audit.System, u.ID, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(rec.URL+"/signin/link?token="+link),
		chromedp.Click(chromedp.ID("signin-link-button")),
		chromedp.WaitVisible(chromedp.ID("register-form")),
	); err != nil {
		t.Fatal(err)
	}
	// The scripts come after the form: wait until they have run.
	for {
		ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && typeof LeakwatchFingerprint === "object"`))
		if err != nil {
			t.Fatal(err)
		}
		if ready {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("fingerprint.js never loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, tc := range browserSecrets {
		want, err := matcher.Compute([]byte(tc.secret), matcher.ComputeOpts{AllowWeak: tc.allowWeak})
		if err != nil {
			t.Fatalf("Go refuses test secret: %v", err)
		}
		arg, _ := json.Marshal(tc.secret)
		js := `LeakwatchFingerprint.compute(` + string(arg) + `, {allowWeak: ` + map[bool]string{true: "true", false: "false"}[tc.allowWeak] + `})`
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("browser compute of %.12q…: %v", tc.secret, err)
		}
		if got != want.String() {
			t.Errorf("secret %.12q…: browser %s, Go %s", tc.secret, got, want)
		}
	}
	// The browser refuses what Go refuses.
	for _, weak := range []string{"password1234567890", "short", "ghp_" + strings.Repeat("a", 36), " leading-space-Zq8Wm3Xr7Tn2Vb5Kc9",
		"AKIAIOSFODNN7EXAMPLE", "1qaz2wsx3edc4rfv", "Summer2024!Summer2024!"} {
		if _, err := matcher.Compute([]byte(weak), matcher.ComputeOpts{}); err == nil {
			t.Fatalf("Go accepts %q", weak)
		}
		arg, _ := json.Marshal(weak)
		js := `LeakwatchFingerprint.compute(` + string(arg) + `).then(() => false, () => true)`
		refused, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if !refused {
			t.Errorf("browser accepts %q, Go refuses it", weak)
		}
	}

	// Register through the page.
	secret := browserSecrets[0].secret
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("register-secret"), secret),
		chromedp.SendKeys(chromedp.CSS(`#register-form input[name=name]`), "deploy-bot"),
		chromedp.Click(chromedp.CSS(`#register-form button`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)),
	); err != nil {
		t.Fatal(err)
	}
	want, _ := matcher.Compute([]byte(secret), matcher.ComputeOpts{})
	ks, err := b.keys.List(context.Background(), org.ID, keys.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 1 || ks[0].Name != "deploy-bot" || ks[0].Fingerprint != want.String() {
		t.Fatalf("keys after registering in the browser: %+v", ks)
	}

	// Rotate through the page.
	next := browserSecrets[3].secret
	sel := `#key-` + itoa(ks[0].ID) + ` form[action$="/rotate"]`
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(sel+` input[data-secret]`), next),
		chromedp.Click(chromedp.CSS(sel+` button`)),
	); err != nil {
		t.Fatal(err)
	}
	// The page before the click also has a notice: wait for the new one.
	for {
		notice, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(".notice") || {}).textContent || ""`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(notice, "Rotated") {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no rotation notice")
		}
		time.Sleep(20 * time.Millisecond)
	}
	k, err := b.keys.Key(context.Background(), org.ID, ks[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	wantNext, _ := matcher.Compute([]byte(next), matcher.ComputeOpts{})
	if k.Fingerprint != wantNext.String() || k.RotatedAt == nil {
		t.Fatalf("after rotating in the browser: %+v", k)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, s := range []string{secret, next} {
		if strings.Contains(received.String(), s) || strings.Contains(received.String(), s[len(s)-16:]) {
			t.Fatal("the server received a plaintext secret")
		}
	}
	if !strings.Contains(received.String(), "fingerprint=lw1") {
		t.Fatal("the server received no fingerprint from the form")
	}
}
