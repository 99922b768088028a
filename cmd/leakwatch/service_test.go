package main

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/matcher"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// service is the real wiring (Serve) running for an end-to-end test on a
// loopback port, with its logs kept for assertions.
type service struct {
	Base string // http://127.0.0.1:port
	Logs *syncBuffer

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startService runs Serve with env as its whole environment
// (LEAKWATCH_HTTP_ADDR defaults to 127.0.0.1:0; logs at debug unless
// LEAKWATCH_LOG_LEVEL is set) and returns once it serves.
// The logs are printed if the test fails, and the service is stopped at
// cleanup if the test did not stop it.
func startService(t testing.TB, env map[string]string) *service {
	t.Helper()
	if _, ok := env["LEAKWATCH_HTTP_ADDR"]; !ok {
		env["LEAKWATCH_HTTP_ADDR"] = "127.0.0.1:0"
	}
	if _, ok := env["LEAKWATCH_OPS_ADDR"]; !ok {
		env["LEAKWATCH_OPS_ADDR"] = "127.0.0.1:0" // tests run side by side
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	s := &service{Logs: &syncBuffer{}, done: make(chan error, 1)}
	level := slog.LevelDebug
	if _, ok := env["LEAKWATCH_LOG_LEVEL"]; ok {
		level = cfg.LogLevel // benchmarks keep per-event debug lines out of the buffer
	}
	logger := slog.New(slog.NewJSONHandler(s.Logs, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	addrCh := make(chan string, 1)
	go func() { s.done <- Serve(ctx, cfg, logger, func(a string) { addrCh <- a }) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", s.Logs.String())
		}
		s.once.Do(func() {
			cancel()
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
			}
		})
	})
	select {
	case addr := <-addrCh:
		s.Base = "http://" + addr
	case err := <-s.done:
		s.once.Do(func() {})
		cancel()
		t.Fatalf("Serve returned before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not start within 30s")
	}
	return s
}

// Stop cancels Serve as SIGTERM does and requires a clean return within
// 10 seconds.
func (s *service) Stop(t *testing.T) {
	t.Helper()
	var err error
	stopped := false
	s.once.Do(func() {
		s.cancel()
		select {
		case err = <-s.done:
			stopped = true
		case <-time.After(10 * time.Second):
		}
	})
	if !stopped {
		t.Fatal("Serve did not stop within 10s")
	}
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// buildBinary builds the leakwatch command into dir and returns its path,
// for tests that must run it as a separate process.
func buildBinary(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "leakwatch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// leakFixture is a fresh database with organisation "acme", its Slack
// incoming webhook pointing at a fake receiver, and one registered GitHub
// token (by fingerprint only).
type leakFixture struct {
	DBURL  string
	Pool   *pgxpool.Pool // closed at cleanup
	Slack  *slackReceiver
	OrgID  int64
	Secret string // the token's plaintext, to plant in public text
}

// leakedKeyFixture builds a leakFixture whose key is called keyName.
func leakedKeyFixture(t *testing.T, keyName string) leakFixture {
	t.Helper()
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	slackFake := newSlackReceiver(t)
	org, _, err := orgs.NewStore(pool).Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := orgs.NewStore(pool).SetSlackWebhook(ctx, org.ID, slackFake.URL+"/services/T000/B000/XXXX"); err != nil {
		t.Fatal(err)
	}
	secret := randomToken(t, "ghp_", 36)
	fp, err := matcher.Compute([]byte(secret), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fp.String(), secret[4:]) {
		t.Fatal("fingerprint holds the secret")
	}
	if _, err := keys.NewStore(pool).Add(ctx, org.ID, keyName, fp); err != nil {
		t.Fatal(err)
	}
	return leakFixture{DBURL: dbURL, Pool: pool, Slack: slackFake, OrgID: org.ID, Secret: secret}
}
