package web

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// countingReader yields n bytes of filler and counts what was read.
type countingReader struct {
	left int64
	read atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for i := range p {
		p[i] = 'a'
	}
	r.left -= int64(len(p))
	r.read.Add(int64(len(p)))
	return len(p), nil
}

// TestBodyLimit: oversized bodies answer 413 with the error shape, and a
// huge unauthenticated upload is refused without being read.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@example.com", org.ID, auth.RoleAdmin)
	c := b.signIn(t, "admin@example.com")

	// A 10 MB JSON body is too large, not malformed.
	big := `{"name":"` + strings.Repeat("x", 10<<20) + `"}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, b.ts.URL+"/api/v1/keys", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", c.csrf)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || errorCode(t, out) != "too_large" {
			t.Fatalf("10 MB JSON (chunked %v) = %d %s", chunked, resp.StatusCode, out)
		}
	}

	// 500 MB of multipart to /signin, unauthenticated: refused on its
	// Content-Length, before the body is read.
	const size = 500 << 20
	filler := &countingReader{left: size}
	head := "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n"
	req, _ := http.NewRequest(http.MethodPost, b.ts.URL+"/signin", io.MultiReader(strings.NewReader(head), filler))
	req.ContentLength = int64(len(head)) + size
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("500 MB multipart = %d %s", resp.StatusCode, out)
		}
	}
	if n := filler.read.Load(); n > 64<<20 {
		t.Fatalf("the client got to send %d MB of the 500 MB", n>>20)
	}
}

// TestReadTimeout: a client that pauses mid-body longer than ReadTimeout
// is cut off; the request never reaches a handler.
func TestReadTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "alice@example.com", org.ID, auth.RoleAdmin)
	srv, err := New(Config{Auth: b.auth, Orgs: b.orgs, Keys: b.keys, Audit: b.audit, Logger: b.logger, ReadTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer()
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout != 500*time.Millisecond {
		t.Fatalf("server timeouts %v %v", hs.ReadHeaderTimeout, hs.ReadTimeout)
	}
	ts := httptest.NewUnstartedServer(hs.Handler)
	ts.Config = hs
	ts.Start()
	defer ts.Close()

	body := `{"email":"alice@example.com","password":"` + testPassword + `"}`
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
	time.Sleep(1500 * time.Millisecond) // the real attack paused 45 s
	_, _ = conn.Write([]byte(body[10:]))
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || bytes.Contains(out, []byte("csrf_token")) {
			t.Fatalf("paused body was accepted: %d %s", resp.StatusCode, out)
		}
	}
	var n int
	if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d sessions, %v: the stalled sign-in went through", n, err)
	}
}

// TestBadTextInForm: a browser posting a form with a NUL byte or invalid
// UTF-8 gets a 400 page that says what is wrong and whose Back link returns
// to the filled-in form; nothing is registered.
func TestBadTextInForm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "admin@example.com", org.ID, auth.RoleAdmin)
	c := b.signIn(t, "admin@example.com")
	for _, body := range []string{"name=a%00b&fingerprint=x", "name=caf%e9&fingerprint=x", "notes=%c3%28"} {
		req, _ := http.NewRequest(http.MethodPost, b.ts.URL+"/keys", strings.NewReader(body+"&csrf_token="+c.csrf))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(out), "not valid UTF-8") || !strings.Contains(string(out), "data-back") {
			t.Fatalf("%s = %d %s", body, resp.StatusCode, out)
		}
	}
	var n int
	if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM keys`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d keys, %v", n, err)
	}
}
