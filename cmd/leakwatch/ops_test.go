package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/migrations"
)

// TestOpsListenerOnWorkerAndCrawler runs a process without the web role,
// which used to open no port, and asks its ops listener everything a
// Kubernetes probe, Prometheus and an operator ask.
func TestOpsListenerOnWorkerAndCrawler(t *testing.T) {
	t.Parallel()
	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPollInterval(1)
	recorded, err := githubtest.Recorded()
	if err != nil {
		t.Fatal(err)
	}
	gh.Publish(recorded[:20]...)
	env := map[string]string{
		"DATABASE_URL":                       dbtest.URL(t),
		"LEAKWATCH_ROLES":                    "worker,crawler",
		"LEAKWATCH_OPS_ADDR":                 "127.0.0.1:0",
		"LEAKWATCH_AUTO_MIGRATE":             "false",
		"LEAKWATCH_GITHUB_API_URL":           gh.APIURL(),
		"LEAKWATCH_WEBHOOK_ALLOW_NETS":       "127.0.0.0/8",
		"LEAKWATCH_GITHUB_MIN_POLL_INTERVAL": "100ms",
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg, logger, nil) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	base := "http://" + waitOpsAddr(t, logs, done)

	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}

	// The only crawler takes the GitHub poller's lock; readiness reports it.
	var rep opsReport
	eventually(t, "a ready crawler leading the GitHub poller", 20*time.Second, func() bool {
		code, body := httpGet(t, base+"/readyz")
		rep = opsReport{}
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatalf("/readyz is not JSON: %v\n%s", err, body)
		}
		return code == http.StatusOK && rep.GitHubPoller != nil && rep.GitHubPoller.Leader
	})
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	latest := all[len(all)-1].Version
	if !rep.Ready || !rep.Database.OK || !rep.Schema.OK || rep.Schema.Version != latest || rep.Schema.Latest != latest ||
		rep.River.State != "running" || rep.GitHubPoller.Required || strings.Join(rep.Roles, ",") != "worker,crawler" {
		t.Fatalf("readiness = %+v (latest migration %d)", rep, latest)
	}

	// Job metrics of a process without the web role, once the poll's
	// events job has run.
	var metrics string
	eventually(t, "job metrics", 20*time.Second, func() bool {
		var code int
		code, metrics = httpGet(t, base+"/metrics")
		return code == http.StatusOK && strings.Contains(metrics, "leakwatch_river_jobs_worked_total")
	})
	for _, want := range []string{
		`leakwatch_river_queue_available_jobs{queue="scan"}`,
		`leakwatch_river_queue_running_jobs{queue="crawl"}`,
		"leakwatch_github_poller_leader 1",
		"go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// River UI: its page and its API, under the prefix.
	if code, body := httpGet(t, base+"/ops/river/"); code != http.StatusOK || !strings.Contains(body, "<html") {
		t.Fatalf("/ops/river/ = %d %.200q", code, body)
	}
	code, body := httpGet(t, base+"/ops/river/api/queues")
	if code != http.StatusOK || !strings.Contains(body, `"name":"scan"`) {
		t.Fatalf("/ops/river/api/queues = %d %.300s", code, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not stop")
	}
}

// TestOpsReadinessWithoutDatabase: with the database gone the ops listener
// stays up and says why it is not ready; the process is still alive.
func TestOpsReadinessWithoutDatabase(t *testing.T) {
	t.Parallel()
	// Port 1 on loopback refuses at once.
	pool, err := pgxpool.New(context.Background(), "postgres://leakwatch@127.0.0.1:1/leakwatch?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rc, err := jobs.NewClient(pool, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(jobs.NewDepthCollector(rc, time.Second), collectors.NewGoCollector())
	h, err := newOpsHandler(t.Context(), opsDeps{Pool: pool, River: rc, Registry: reg, Roles: []string{RoleWeb}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	code, body := httpGet(t, srv.URL+"/readyz")
	var rep opsReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/readyz is not JSON: %v\n%s", err, body)
	}
	if code != http.StatusServiceUnavailable || rep.Ready || rep.Database.OK || rep.Database.Error == "" ||
		rep.Schema.OK || rep.River.State != "insert-only" || rep.GitHubPoller != nil {
		t.Fatalf("/readyz = %d %+v", code, rep)
	}
	if code, _ := httpGet(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d without a database; liveness must not restart for an outage", code)
	}
	// The queue depth cannot be counted, but the other metrics still serve.
	if code, body := httpGet(t, srv.URL+"/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") ||
		strings.Contains(body, "leakwatch_river_queue_available_jobs{") {
		t.Fatalf("/metrics = %d %.300s", code, body)
	}
}

func TestOpsAddrSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env, want, wantErr string
	}{
		{env: "", want: ":9090"},
		{env: "127.0.0.1:9191", want: "127.0.0.1:9191"},
		{env: "off", want: "off"},
		{env: "9090", wantErr: "LEAKWATCH_OPS_ADDR"},
	} {
		cfg, err := LoadConfig(func(k string) string {
			if k == "LEAKWATCH_OPS_ADDR" {
				return tc.env
			}
			return ""
		})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err = %v, want one naming %s", tc.env, err, tc.wantErr)
			}
			continue
		}
		if err != nil || cfg.OpsAddr != tc.want {
			t.Errorf("%q: OpsAddr = %q, %v; want %q", tc.env, cfg.OpsAddr, err, tc.want)
		}
	}
}

// TestProbe is the container healthcheck of images without a shell.
func TestProbe(t *testing.T) {
	t.Parallel()
	var unready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || unready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, `{"ready":true}`) //nolint:errcheck
	}))
	defer srv.Close()
	var out, errOut strings.Builder
	if code := runProbe(t.Context(), []string{srv.URL + "/readyz"}, nil, &out, &errOut); code != 0 || out.String() != `{"ready":true}` {
		t.Fatalf("probe of a ready listener = %d, %q %q", code, out.String(), errOut.String())
	}
	unready.Store(true)
	if code := runProbe(t.Context(), []string{srv.URL + "/readyz"}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "503") {
		t.Fatalf("probe of an unready listener = %d, %q", code, errOut.String())
	}
	if code := runProbe(t.Context(), []string{"http://127.0.0.1:1/readyz"}, nil, &out, &errOut); code != 1 {
		t.Fatalf("probe of a closed port = %d", code)
	}

	for _, tc := range []struct{ addr, want, wantErr string }{
		{addr: ":9090", want: "http://127.0.0.1:9090/readyz"},
		{addr: "0.0.0.0:9090", want: "http://127.0.0.1:9090/readyz"},
		{addr: "[::]:9090", want: "http://127.0.0.1:9090/readyz"},
		{addr: "10.1.2.3:9191", want: "http://10.1.2.3:9191/readyz"},
		{addr: "off", wantErr: "off"},
	} {
		got, err := probeURL(tc.addr, "/readyz")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("probeURL(%q) err = %v", tc.addr, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("probeURL(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
}

// waitOpsAddr reads the ops listener's address from the service's logs.
func waitOpsAddr(t *testing.T, logs *syncBuffer, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "ops listening" {
				return line.Addr
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Serve returned before its ops listener: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("no ops listener within 30s")
	return ""
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
