package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
)

// readmeGo makes `go run ./cmd/leakwatch ARGS` in a README block run the
// built binary, and refuses any other use of go, so a block cannot drift
// to a command this test does not run.
const readmeGo = `set -e
go() {
	if [ "$1" != run ] || [ "$2" != ./cmd/leakwatch ]; then echo "README test: unexpected: go $*" >&2; return 99; fi
	shift 2
	"$LEAKWATCH_BIN" "$@"
}
`

// TestReadmeExamples runs the sh blocks of the README's "Add a key and see
// an incident" as written, with sh, on a database never migrated: the
// setup block (orgs create, set-slack with a test post, set-revocation,
// tokens create), serve in the background and keys import with the token.
// Only the port (8080 → a free one) is replaced; GitHub is a loopback fake
// (LEAKWATCH_GITHUB_API_URL) and hooks.slack.com is reached through an
// HTTPS proxy with a test CA (HTTPS_PROXY, SSL_CERT_FILE), as a corporate
// network would. Then a leak of the imported token in the GitHub stream
// opens an incident seen with the CLI-made token, and the Slack channel
// gets its alert. It also checks every curl example that sends JSON says so.
func TestReadmeExamples(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range shBlocks(string(readme), "") {
		if strings.Contains(block, "curl") && strings.Contains(block, " -d ") && !strings.Contains(block, `-H "Content-Type: application/json"`) {
			t.Errorf("a curl example sends JSON without Content-Type (the API answers 415):\n%s", block)
		}
	}
	blocks := shBlocks(string(readme), "## Add a key and see an incident")
	if len(blocks) != 3 || !strings.Contains(blocks[1], " serve") {
		t.Fatalf("want 3 sh blocks (setup, serve, import) in the section, got %d:\n%s", len(blocks), strings.Join(blocks, "\n---\n"))
	}

	bin := buildBinary(t, t.TempDir())
	dir := t.TempDir()
	addr := freeAddr(t)
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	gh.SetPollInterval(1)
	slack := newSlackOverProxy(t, dir)
	secret := randomToken(t, "ghp_", 36)
	hook := "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx"
	if err := os.WriteFile(filepath.Join(dir, "slack-webhook-url.txt"), []byte(hook+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"LEAKWATCH_BIN="+bin,
		"DATABASE_URL="+emptyDatabase(t),
		"LEAKWATCH_HTTP_ADDR="+addr,
		"LEAKWATCH_OPS_ADDR=127.0.0.1:0",
		"LEAKWATCH_LOG_LEVEL=warn",
		"LEAKWATCH_GITHUB_API_URL="+gh.APIURL(),
		"LEAKWATCH_WEBHOOK_ALLOW_NETS=127.0.0.0/8",
		"LEAKWATCH_OUTBOUND_PROXY="+slack.proxyURL,
		"LEAKWATCH_GITHUB_RAW_URL="+gh.RawURL(),
		"LEAKWATCH_GITHUB_TOKENS=readme-test",
		"LEAKWATCH_GITHUB_MIN_POLL_INTERVAL=200ms",
		"HTTPS_PROXY="+slack.proxyURL,
		"SSL_CERT_FILE="+slack.caFile,
		"GITHUB_TOKEN_TO_PROTECT="+secret,
	)
	sh := func(block string) *exec.Cmd {
		cmd := exec.Command("sh", "-c", readmeGo+strings.ReplaceAll(block, "localhost:8080", addr))
		cmd.Dir, cmd.Env = dir, env
		return cmd
	}

	// Setup, from the CLI.
	if out, err := sh(blocks[0]).CombinedOutput(); err != nil {
		t.Fatalf("setup block: %v\n%s", err, out)
	} else if !strings.Contains(string(out), "http://"+addr+"/signin/link?token=") || !strings.Contains(string(out), "HMAC secret") {
		t.Fatalf("setup block printed no sign-in link on %s or no HMAC secret:\n%s", addr, out)
	}
	if slack.posts() != 1 {
		t.Fatalf("set-slack made %d test posts, want 1", slack.posts())
	}

	// serve, in the background, in its own process group.
	serveCmd := sh(blocks[1])
	serveCmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var serveOut syncBuffer
	serveCmd.Stdout, serveCmd.Stderr = &serveOut, &serveOut
	if err := serveCmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- serveCmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-serveCmd.Process.Pid, syscall.SIGTERM) //nolint:errcheck
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			syscall.Kill(-serveCmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck
		}
		if t.Failed() {
			t.Logf("serve output:\n%s", serveOut.String())
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready within 60 s:\n%s", serveOut.String())
		}
	}

	// keys import with the CLI-made token.
	if out, err := sh(blocks[2]).CombinedOutput(); err != nil {
		t.Fatalf("import block: %v\n%s", err, out)
	}
	token, err := os.ReadFile(filepath.Join(dir, "token.txt"))
	if err != nil {
		t.Fatal(err)
	}

	// The leak: an incident, seen with the token, and its Slack alert.
	gh.Publish(githubtest.CommentEvent(7001, "octo/app", "mallory", "oops "+secret, time.Now()))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/incidents", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		var list struct{ Items []demoIncident }
		if resp, err := http.DefaultClient.Do(req); err == nil {
			json.NewDecoder(resp.Body).Decode(&list) //nolint:errcheck
			resp.Body.Close()
		}
		if len(list.Items) == 1 && list.Items[0].KeyName == "deploy bot token" && slack.saw("deploy bot token") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no incident with its Slack alert within 30 s: %+v, %d Slack posts", list.Items, slack.posts())
		}
	}
}

// shBlocks returns the ```sh blocks of md, only those under the heading
// section if it is not empty.
func shBlocks(md, section string) []string {
	if section != "" {
		i := strings.Index(md, section+"\n")
		if i < 0 {
			return nil
		}
		md = md[i+len(section):]
		if j := strings.Index(md, "\n## "); j >= 0 {
			md = md[:j]
		}
	}
	var out []string
	for _, m := range regexp.MustCompile("(?ms)^ *```sh\n(.*?)^ *```").FindAllStringSubmatch(md, -1) {
		out = append(out, m[1])
	}
	return out
}

// slackOverProxy is hooks.slack.com as a process sees it through an HTTPS
// proxy: a CONNECT proxy that reaches only hooks.slack.com:443, and a TLS
// server there with a certificate from a CA in caFile.
type slackOverProxy struct {
	proxyURL, caFile string
	mu               sync.Mutex
	texts            []string
}

func newSlackOverProxy(t *testing.T, dir string) *slackOverProxy {
	t.Helper()
	s := &slackOverProxy{caFile: filepath.Join(dir, "ca.pem")}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hooks.slack.com"}, DNSNames: []string{"hooks.slack.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	hooks := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		if !strings.HasPrefix(r.URL.Path, "/services/") || json.NewDecoder(r.Body).Decode(&m) != nil || m.Text == "" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.texts = append(s.texts, m.Text)
		s.mu.Unlock()
		io.WriteString(w, "ok") //nolint:errcheck
	}))
	hooks.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	hooks.StartTLS()
	t.Cleanup(hooks.Close)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != "hooks.slack.com:443" {
			http.Error(w, "this proxy reaches only hooks.slack.com:443", http.StatusForbidden)
			return
		}
		up, err := net.Dial("tcp", hooks.Listener.Addr().String())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		fmt.Fprint(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() {
			defer up.Close()
			defer conn.Close()
			go io.Copy(up, bufio.NewReader(rw)) //nolint:errcheck
			io.Copy(conn, up)                   //nolint:errcheck
		}()
	}))
	t.Cleanup(proxy.Close)
	s.proxyURL = proxy.URL
	return s
}

func (s *slackOverProxy) posts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.texts)
}

func (s *slackOverProxy) saw(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, txt := range s.texts {
		if strings.Contains(txt, sub) {
			return true
		}
	}
	return false
}
