package main

// The ops listener serves operators, never the public: liveness, readiness
// with detail, Prometheus metrics and River UI, on LEAKWATCH_OPS_ADDR, for
// every role. Kubernetes probes it and Prometheus scrapes it; the Helm
// chart's Service and Ingress expose only the web port, so what is here is
// reachable from inside the cluster only (and the chart's NetworkPolicy
// narrows that further).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"riverqueue.com/riverui"

	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/migrations"
)

// opsRiverPrefix is where River UI is mounted on the ops listener.
const opsRiverPrefix = "/ops/river"

// opsDeps is what the ops listener reports on.
type opsDeps struct {
	Pool  *pgxpool.Pool
	River *jobs.Client
	// RiverRunning is set once River works jobs; nil for a role that only
	// inserts them (web alone).
	RiverRunning *atomic.Bool
	Registry     *prometheus.Registry
	Roles        []string
	// GitHubLeader reports whether this process holds the GitHub poller's
	// lock; nil when it does not poll.
	GitHubLeader func() bool
	Logger       *slog.Logger
}

// startOps serves the ops listener on addr ("off" or "": none) until stop is
// called. It also registers the River queue depth gauges, which the
// worker autoscaler reads.
func startOps(addr string, d opsDeps) (stop func(), err error) {
	// A Config built by hand (tests, demo) leaves it empty: no listener
	// rather than one on a random port.
	if addr == "" || addr == opsOff {
		return func() {}, nil
	}
	d.Registry.MustRegister(jobs.NewDepthCollector(d.River, 10*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	h, err := newOpsHandler(ctx, d)
	if err != nil {
		cancel()
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ops listener on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.Logger.Error("ops listener", slog.Any("error", err))
		}
	}()
	d.Logger.Info("ops listening", slog.String("addr", ln.Addr().String()))
	return func() {
		shutCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
		defer done()
		srv.Shutdown(shutCtx) //nolint:errcheck // probes may be cut; the process is stopping
		cancel()
	}, nil
}

// newOpsHandler routes the ops listener. River UI's background counters
// start with its first request, so replicas nobody browses cost the
// database nothing.
func newOpsHandler(ctx context.Context, d opsDeps) (http.Handler, error) {
	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(d.River, nil),
		// Job arguments hold IDs and redacted previews only, but an operator
		// need not see them to see the queues.
		JobListHideArgsByDefault: true,
		Logger:                   d.Logger,
		Prefix:                   opsRiverPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("river ui: %w", err)
	}
	var uiStart sync.Once
	var uiErr error
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		// Liveness fails only when a restart helps: River died under a
		// process that is not stopping. A database outage is readiness.
		if d.RiverRunning != nil && d.RiverRunning.Load() && isClosed(d.River.Stopped()) {
			http.Error(w, "river stopped\n", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n") //nolint:errcheck
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		rep := opsReadiness(rctx, d)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep) //nolint:errcheck
	})
	// A collector that cannot reach the database must not hide the others.
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.Handle("GET "+opsRiverPrefix, http.RedirectHandler(opsRiverPrefix+"/", http.StatusFound))
	mux.Handle(opsRiverPrefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uiStart.Do(func() { uiErr = ui.Start(ctx) })
		if uiErr != nil {
			d.Logger.Error("start river ui", slog.Any("error", uiErr))
			http.Error(w, "river ui unavailable\n", http.StatusServiceUnavailable)
			return
		}
		ui.ServeHTTP(w, r)
	}))
	return mux, nil
}

// opsReport is the ops /readyz body: every check with its detail.
type opsReport struct {
	Ready        bool          `json:"ready"`
	Version      string        `json:"version"`
	Roles        []string      `json:"roles"`
	Database     opsCheck      `json:"database"`
	Schema       opsSchema     `json:"schema"`
	River        opsRiver      `json:"river"`
	GitHubPoller *opsGitHubPol `json:"github_poller,omitempty"`
}

type opsCheck struct {
	OK        bool    `json:"ok"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

type opsSchema struct {
	OK bool `json:"ok"`
	// Version is the highest applied migration; Latest the highest this
	// binary carries.
	Version int      `json:"version"`
	Latest  int      `json:"latest"`
	Pending []string `json:"pending,omitempty"`
	Error   string   `json:"error,omitempty"`
}

type opsRiver struct {
	OK bool `json:"ok"`
	// State is running, stopped, starting, or insert-only (a web process
	// inserts jobs and works none).
	State string `json:"state"`
}

// opsGitHubPol reports the crawler's leader lock. Only one crawler holds
// it, so a follower is ready too: Required is always false.
type opsGitHubPol struct {
	Leader   bool `json:"leader"`
	Required bool `json:"required"`
}

func opsReadiness(ctx context.Context, d opsDeps) opsReport {
	rep := opsReport{Version: versionString(), Roles: d.Roles}

	start := time.Now()
	err := d.Pool.Ping(ctx)
	rep.Database = opsCheck{OK: err == nil, LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		rep.Database.Error = err.Error()
	}

	if rep.Database.OK {
		rep.Schema = schemaState(ctx, d.Pool)
	} else {
		rep.Schema.Error = "database unreachable"
	}

	switch {
	case d.RiverRunning == nil:
		rep.River = opsRiver{OK: true, State: "insert-only"}
	case !d.RiverRunning.Load():
		rep.River = opsRiver{State: "starting"}
	case isClosed(d.River.Stopped()):
		rep.River = opsRiver{State: "stopped"}
	default:
		rep.River = opsRiver{OK: true, State: "running"}
	}

	if d.GitHubLeader != nil {
		rep.GitHubPoller = &opsGitHubPol{Leader: d.GitHubLeader()}
	}
	rep.Ready = rep.Database.OK && rep.Schema.OK && rep.River.OK
	return rep
}

func schemaState(ctx context.Context, pool *pgxpool.Pool) opsSchema {
	var s opsSchema
	all, err := migrations.Status(ctx, pool)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	for _, m := range all {
		s.Latest = max(s.Latest, m.Version)
		if m.AppliedAt != nil {
			s.Version = max(s.Version, m.Version)
		} else {
			s.Pending = append(s.Pending, m.Name)
		}
	}
	// Check also covers River's own migrations.
	if err := migrations.Check(ctx, pool); err != nil {
		s.Error = err.Error()
		return s
	}
	s.OK = true
	return s
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// githubLeader reads the GitHub poller's leader gauge from the registry:
// the poller keeps its lock to itself, and the gauge is what it publishes.
func githubLeader(g prometheus.Gatherer) func() bool {
	return func() bool {
		mfs, err := g.Gather()
		if err != nil && len(mfs) == 0 {
			return false
		}
		for _, mf := range mfs {
			if mf.GetName() == "leakwatch_github_poller_leader" {
				for _, m := range mf.GetMetric() {
					return m.GetGauge().GetValue() == 1
				}
			}
		}
		return false
	}
}

// opsOff is the LEAKWATCH_OPS_ADDR value that turns the ops listener off
// (an empty value means the default, as for every setting).
const opsOff = "off"

// runProbe exits 0 when an ops endpoint answers 200. Container images
// without a shell or curl (distroless) use it as their healthcheck.
func runProbe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("path", "/readyz", "ops path to ask")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: leakwatch probe [--path /readyz] [URL]\n\nAsks the ops listener (LEAKWATCH_OPS_ADDR, or URL) and exits 0 on 200.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	url := fs.Arg(0)
	if url == "" {
		cfg, ok := loadConfigOrFail(stderr)
		if !ok {
			return 2
		}
		var err error
		if url, err = probeURL(cfg.OpsAddr, *path); err != nil {
			fmt.Fprintln(stderr, "leakwatch probe:", err)
			return 2
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch probe:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch probe:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	stdout.Write(body) //nolint:errcheck
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "leakwatch probe:", resp.Status)
		return 1
	}
	return 0
}

// probeURL is the loopback URL of path on the ops listener at addr.
func probeURL(addr, path string) (string, error) {
	if addr == opsOff {
		return "", errors.New("LEAKWATCH_OPS_ADDR is off; give a URL")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("LEAKWATCH_OPS_ADDR: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// opsAddrDefault is the ops listener's port, the one the chart probes.
const opsAddrDefault = ":9090"
