package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/matcher"
)

// TestBehindPgBouncerTransactionMode runs the real wiring through PgBouncer
// in transaction mode (pool_mode=transaction) with
// LEAKWATCH_DATABASE_POOLER=transaction. Startup migrations, the GitHub
// poller's leader lock, River (poll-only), the key registry and the
// incident pipeline must all work through it: a key registered while the
// service runs reaches its workers by polling (the full reload is an hour
// away and no notification passes the pooler), a leak of it published a
// second later is worked into one incident and one Slack alert, and no
// server session ever LISTENs. .ci/run installs pgbouncer; without it the
// test fails, naming the package.
func TestBehindPgBouncerTransactionMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := leakedKeyFixture(t, "planted before start")
	bouncerURL := startPgBouncer(t, fx.DBURL)

	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPollInterval(1)
	svc := startService(t, map[string]string{
		"DATABASE_URL":                       bouncerURL,
		"LEAKWATCH_DATABASE_POOLER":          "transaction",
		"LEAKWATCH_GITHUB_API_URL":           gh.APIURL(),
		"LEAKWATCH_WEBHOOK_ALLOW_NETS":       "127.0.0.0/8",
		"LEAKWATCH_GITHUB_TOKENS":            "test-token-1",
		"LEAKWATCH_GITHUB_MIN_POLL_INTERVAL": "100ms",
		"LEAKWATCH_KEY_RELOAD_INTERVAL":      "1h", // only the version poll can propagate a key
		"LEAKWATCH_GHARCHIVE_URL":            "off",
		"LEAKWATCH_LOG_LEVEL":                "info",
	})

	// The key registered before the start is found: the service works.
	gh.Publish(githubtest.CommentEvent(91000001, "octo/app", "mallory", "token: "+fx.Secret, time.Now().UTC()))
	t.Cleanup(func() { // the jobs' errors say what the pooler broke
		if t.Failed() {
			rows, _ := fx.Pool.Query(ctx, `SELECT kind, state, attempt, coalesce(errors::text,'') FROM river_job ORDER BY id`)
			for rows.Next() {
				var k, s, e string
				var a int
				_ = rows.Scan(&k, &s, &a, &e)
				t.Logf("job %s %s %d %s", k, s, a, e)
			}
		}
	})
	eventually(t, "the first incident's Slack alert", 30*time.Second, func() bool { return len(fx.Slack.messages()) == 1 })

	// A key registered now must reach the running workers within a second:
	// its leak is published one second after the registration and scanned
	// once, so a key set not yet updated would miss it for good.
	secret := randomToken(t, "ghp_", 36)
	fp, err := matcher.Compute([]byte(secret), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.NewStore(fx.Pool).Add(ctx, fx.OrgID, "registered while running", fp); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	gh.Publish(githubtest.CommentEvent(91000002, "octo/web", "mallory", "config: "+secret, time.Now().UTC()))
	eventually(t, "the second key's alert", 30*time.Second, func() bool { return len(fx.Slack.messages()) == 2 })
	if msg := fx.Slack.messages()[1]; !strings.Contains(msg, "registered while running") {
		t.Fatalf("second alert does not name the new key:\n%s", msg)
	}

	var incidents, worked, listening int
	if err := fx.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM incidents),
		(SELECT count(*) FROM river_job WHERE state = 'completed'),
		(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'listen %')`).
		Scan(&incidents, &worked, &listening); err != nil {
		t.Fatal(err)
	}
	if incidents != 2 || worked == 0 {
		t.Fatalf("%d incidents and %d completed jobs; want 2 incidents and jobs worked", incidents, worked)
	}
	if listening != 0 {
		t.Fatalf("%d server sessions LISTEN behind the pooler", listening)
	}
	for _, bad := range []string{"prepared statement", "lost poller lock", "key change listener"} {
		if strings.Contains(svc.Logs.String(), bad) {
			t.Errorf("logs mention %q", bad)
		}
	}
	svc.Stop(t)
}

// startPgBouncer starts PgBouncer in transaction mode on a free loopback
// port in front of the database of dbURL and returns a URL to it. Clients
// are not authenticated (auth_type=any: the test's own loopback listener);
// PgBouncer logs in to PostgreSQL with dbURL's user and password.
func startPgBouncer(t *testing.T, dbURL string) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr != nil {
			t.Fatal("pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it)")
		}
		bin = "/usr/sbin/pgbouncer"
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	addr := freeAddr(t)
	_, listenPort, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Readable by the unprivileged user PgBouncer switches to under root.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`[databases]
leakwatch = host=%s port=%s dbname=%s user=%s password=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %s
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
pidfile =
logfile =
`, u.Hostname(), port, strings.TrimPrefix(u.Path, "/"), u.User.Username(), pw, listenPort)
	ini := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(ini, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{ini}
	if os.Geteuid() == 0 {
		args = []string{"-u", "nobody", ini} // PgBouncer refuses to run as root
	}
	logs := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		cmd.Wait()                          //nolint:errcheck
		if t.Failed() {
			t.Logf("pgbouncer:\n%s", logs.String())
		}
	})
	eventually(t, "pgbouncer listening", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return "postgres://leakwatch@" + addr + "/leakwatch?sslmode=disable"
}
