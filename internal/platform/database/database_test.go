package database

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:hunter2@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u@h/db?password=hunter2&sslmode=disable", "postgres://u@h/db?password=xxxxx&sslmode=disable"},
		{"postgres:///db?host=/tmp", "postgres:///db?host=/tmp"},
		{"not a url", "(unparseable database URL)"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(Redact(tc.in), "hunter2") {
			t.Errorf("Redact(%q) leaks the password", tc.in)
		}
	}
}

func TestNewPoolErrorHidesPassword(t *testing.T) {
	t.Parallel()
	_, err := NewPool(context.Background(), "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=1", 1)
	if err == nil {
		t.Fatal("expected an error connecting to port 1")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

// TestEmbedded starts a real embedded server from the installed binaries in
// a temporary data directory, twice, to prove a restart reuses the cluster.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	if bin, _ := installedBinaries(); bin == "" {
		t.Skip("no installed PostgreSQL binaries")
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// The unprivileged server must be able to reach the data directory.
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	port := freeTCPPort(t)
	for i := range 2 {
		srv, err := startEmbedded(ctx, dir+"/data", port, logger)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		pool, err := NewPool(ctx, srv.url, 2)
		if err != nil {
			srv.stop()
			t.Fatalf("connect %d: %v", i, err)
		}
		if i == 0 {
			_, err = pool.Exec(ctx, `CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)`)
		} else {
			var x int
			err = pool.QueryRow(ctx, `SELECT x FROM kept`).Scan(&x)
			if err == nil && x != 42 {
				t.Errorf("kept = %d, want 42", x)
			}
		}
		pool.Close()
		srv.stop()
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
}

// TestEnsureDatabase creates a database on the test server the way serve does
// without DATABASE_URL, twice (the second time it exists already).
func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	if !answers(ctx, admin) {
		t.Skip("no PostgreSQL server at TEST_DATABASE_URL")
	}
	name := fmt.Sprintf("leakwatch_ensure_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name) //nolint:errcheck
			conn.Close(ctx)
		}
	})
	for i := range 2 {
		dbURL, err := ensureDatabase(ctx, admin, name)
		if err != nil {
			t.Fatalf("ensure %d: %v", i, err)
		}
		if !strings.Contains(dbURL, "/"+name) {
			t.Fatalf("URL %q does not name %s", dbURL, name)
		}
		pool, err := NewPool(ctx, dbURL, 1)
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		pool.Close()
	}
}

func freeTCPPort(t *testing.T) uint32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint32(l.Addr().(*net.TCPAddr).Port)
}
