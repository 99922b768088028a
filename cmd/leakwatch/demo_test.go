package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestDemo runs `leakwatch demo` as a newcomer would (the real binary, no
// configuration but a free port and the test server) and checks through
// the dashboard's API and pages that within 30 s of start an incident is
// open, revoked by its endpoint, and its Slack message is on the Demo Slack
// page; then that Ctrl-C stops it cleanly and it never touched the
// database DATABASE_URL names.
func TestDemo(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t, t.TempDir())
	// DATABASE_URL names a database of its own that must stay untouched.
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = dbtest.DefaultURL
	}
	au, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	realDB := fmt.Sprintf("leakwatch_demotest_%d", time.Now().UnixNano())
	au.Path = "/" + realDB
	dbURL := au.String()
	demoDB := demoDatabaseName(dbURL)
	au.Path = "/postgres"
	t.Cleanup(func() { dropDatabase(t, au.String(), demoDB) })
	addr := freeAddr(t)

	start := time.Now()
	cmd := exec.Command(bin, "demo")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LEAKWATCH_HTTP_ADDR="+addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()

	// One line: the dashboard URL and a one-time sign-in link on our port.
	var first string
	select {
	case first = <-lines:
	case <-time.After(60 * time.Second):
		t.Fatalf("no first line within 60 s; stderr:\n%s", stderr.String())
	}
	link := regexp.MustCompile(`http://\S+/signin/link\?token=\S+`).FindString(first)
	if !strings.Contains(first, "http://"+addr+"/incidents") || !strings.HasPrefix(link, "http://"+addr+"/") {
		t.Fatalf("first line lacks the dashboard URL or sign-in link on %s: %q\nstderr:\n%s", addr, first, stderr.String())
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	base := "http://" + addr
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.PostForm(base+"/signin/link", u.Query())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Within 30 s: an incident contained by its revocation endpoint, and
	// its alert on the Demo Slack page.
	var contained demoIncident
	var slackPage string
	for deadline := start.Add(30 * time.Second); ; {
		var list struct{ Items []demoIncident }
		getJSON(t, c, base+"/api/v1/incidents?state=open", &list)
		for _, inc := range list.Items {
			if inc.State == "open" && inc.Containment == "contained" {
				contained = inc
			}
		}
		slackPage = getPage(t, c, base+"/demo/slack")
		if contained.ID != 0 && strings.Contains(slackPage, contained.KeyName) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no contained incident with its Slack message within 30 s: %+v\nstderr:\n%s\nslack page:\n%s", list.Items, stderr.String(), slackPage)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("incident %d (%s) contained and on Demo Slack %.1f s after start", contained.ID, contained.KeyName, time.Since(start).Seconds())
	var details struct {
		Timeline []struct {
			Kind  string `json:"kind"`
			Actor string `json:"actor"`
		} `json:"timeline"`
		RevocationLog []struct {
			Status string `json:"status"`
		} `json:"revocation_log"`
	}
	getJSON(t, c, fmt.Sprintf("%s/api/v1/incidents/%d", base, contained.ID), &details)
	revoked := false
	for _, e := range details.Timeline {
		revoked = revoked || (e.Kind == "revoked" && e.Actor == "revocation-webhook")
	}
	if !revoked || len(details.RevocationLog) == 0 {
		t.Fatalf("incident %d: no revocation by its endpoint in the timeline or log: %+v", contained.ID, details)
	}
	if !strings.Contains(getPage(t, c, base+"/incidents"), `href="/demo/slack"`) {
		t.Error("the navigation lacks the Demo Slack link")
	}

	// Ctrl-C stops everything cleanly.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("demo exited with %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("demo did not stop within 20 s of SIGINT; stderr:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", stderr.String())
	}

	// The database DATABASE_URL names is untouched: never even created.
	conn, err := pgx.Connect(context.Background(), au.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`, realDB).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s exists (%d, %v); the demo must use only %s", realDB, n, err, demoDB)
	}
}

type demoIncident struct {
	ID          int64  `json:"id"`
	KeyName     string `json:"key_name"`
	State       string `json:"state"`
	Containment string `json:"containment"`
}

func TestDemoDatabaseName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "leakwatch_demo",
		"postgres://u@db:5432/leakwatch?sslmode=disable": "leakwatch_demo",
		"postgres://u@db:5432/prod":                      "prod_demo",
		"postgres://u@db:5432/":                          "leakwatch_demo",
	} {
		if got := demoDatabaseName(in); got != want {
			t.Errorf("demoDatabaseName(%q) = %q, want %q", in, got, want)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func dropDatabase(t *testing.T, serverURL, name string) {
	conn, err := pgx.Connect(context.Background(), serverURL)
	if err != nil {
		t.Logf("drop %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Logf("drop %s: %v", name, err)
	}
}
