package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler"
	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/crawler/revoke"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/database"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
	"github.com/leakwatch/leakwatch/migrations"
	"github.com/leakwatch/leakwatch/web"
)

func runServeCommand(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	roles := fs.String("roles", "", "roles to take, overriding LEAKWATCH_ROLES: any of web,worker,crawler")
	if code, ok := parseFlags(fs, args, "Usage: leakwatch serve [--roles web,worker,crawler]\n\nRuns the service until SIGINT or SIGTERM.\n\nFlags:\n", stdout, stderr); !ok {
		return code
	}
	cfg, ok := loadConfigOrFail(stderr)
	if !ok {
		return 2
	}
	if *roles != "" {
		r, err := parseRoles(*roles)
		if err != nil {
			fmt.Fprintln(stderr, "leakwatch serve: --roles:", err)
			return 2
		}
		cfg.Roles = r
	}
	logger := newLogger(cfg, stderr)
	if err := Serve(ctx, cfg, logger, nil); err != nil {
		logger.Error("leakwatch stopped", slog.Any("error", err))
		return 1
	}
	return 0
}

// Serve runs the service until ctx ends, then shuts down in order: HTTP,
// crawlers, River (soft stop, then hard after the deadline), the pool.
// started, if not nil, is called with the web address once serving.
func Serve(ctx context.Context, cfg Config, logger *slog.Logger, started func(addr string)) error {
	return serve(ctx, cfg, logger, started, serveOpts{})
}

// serveOpts is what `leakwatch demo` adds to the production wiring: a
// database it opened (and reset) itself, the address it already holds, and
// its Slack sink's page. Zero: serve opens and listens itself.
type serveOpts struct {
	db        *database.DB
	listener  net.Listener
	demoSlack func() []web.DemoSlackMessage
}

func serve(ctx context.Context, cfg Config, logger *slog.Logger, started func(addr string), opts serveOpts) error {
	logger.Info("starting leakwatch", slog.String("version", versionString()), slog.String("roles", strings.Join(cfg.Roles, ",")))
	db, closeDB, err := openServeDB(ctx, cfg, logger, opts.db)
	if err != nil {
		return err
	}
	defer closeDB()
	pool := db.Pool
	reg := newServeRegistry(pool)

	d, err := newDomain(ctx, cfg, pool, reg, logger)
	if err != nil {
		return err
	}
	w, err := newWorkers(ctx, cfg, pool, reg, d, logger)
	if err != nil {
		return err
	}
	riverRunning, stopRiverClient, err := startJobs(ctx, cfg, w, logger)
	if err != nil {
		return err
	}
	defer stopRiverClient()
	// Background loops stop before River (deferred after it, so run first)
	// so they insert no work into a stopping client.
	stopBackground := startBackground(ctx, cfg, pool, reg, w, logger)
	defer stopBackground()
	stopOps, err := startOpsFor(cfg, pool, reg, w, riverRunning, logger)
	if err != nil {
		return err
	}
	defer stopOps()

	if !cfg.Has(RoleWeb) {
		<-ctx.Done()
		logger.Info("shutting down")
		return nil
	}
	srv, err := newWebServer(ctx, cfg, pool, reg, d, w, riverRunning, opts.demoSlack, logger)
	if err != nil {
		return err
	}
	return serveHTTP(ctx, cfg, srv, opts, started, pool, logger)
}

// openServeDB returns the database (opened here unless the caller passed
// one, which it then closes itself) with its schema migrated or checked.
func openServeDB(ctx context.Context, cfg Config, logger *slog.Logger, db *database.DB) (*database.DB, func(), error) {
	closeDB := func() {}
	if db == nil {
		var err error
		if db, err = database.Open(ctx, dbConfig(cfg), logger); err != nil {
			return nil, nil, err
		}
		closeDB = db.Close
	}
	if cfg.AutoMigrate {
		if err := migrations.Migrate(ctx, db.Pool, logger); err != nil {
			closeDB()
			return nil, nil, err
		}
	} else if err := migrations.Check(ctx, db.Pool); err != nil {
		closeDB()
		return nil, nil, err
	}
	return db, closeDB, nil
}

// newServeRegistry is the process's Prometheus registry with the Go,
// process and paste collectors.
func newServeRegistry(pool *pgxpool.Pool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(paste.NewCollector(paste.NewStore(pool)))
	return reg
}

// domain is what every role shares: the incident workflow and its
// notifiers, inserting jobs through an insert-only River client.
type domain struct {
	inserter    *jobs.Client
	out         outbound
	signingKeys []webhook.SigningKey
	incidents   *incidents.Service
	slack       *slack.Service
	eventHooks  *eventhooks.Store
}

// newDomain builds the incident workflow. River's way out of the loop
// between a client and the services its workers need: the services insert
// through an insert-only client (river.Config without Queues), their
// workers go into the bundle (newWorkers), then the working client is built
// with the bundle complete. A web-only process needs no other client.
func newDomain(ctx context.Context, cfg Config, pool *pgxpool.Pool, reg prometheus.Registerer, logger *slog.Logger) (domain, error) {
	inserter, err := jobs.NewClient(pool, jobs.Config{Logger: logger, PollOnly: cfg.transactionPooler()})
	if err != nil {
		return domain{}, err
	}
	d := domain{inserter: inserter, out: newOutbound(cfg)}
	guard := outboundGuard(cfg)
	// Without LEAKWATCH_WEBHOOK_SIGNING_KEY, a key is generated once and kept
	// in the database, so every replica signs alike.
	if d.signingKeys, err = webhook.LoadOrCreateKeys(ctx, pool, cfg.Encryption, cfg.WebhookSigningKeys); err != nil {
		return domain{}, err
	}
	// Every timeline entry reaches Slack and the event webhooks through this
	// one hook.
	d.incidents = incidents.NewService(pool, inserter, logger, incidents.Config{
		Notifier:    incidents.Notifiers{slack.NewNotifier(inserter), eventhooks.NewNotifier(inserter)},
		Box:         cfg.Encryption,
		Guard:       &guard,
		WebhookKeys: d.signingKeys,
	}).WithPolledChanges(cfg.pooledPoll(pooledChangesPoll))
	d.incidents.RegisterMetrics(reg)
	d.slack = slack.NewService(pool, slack.NewStore(pool, cfg.Encryption), inserter,
		slack.Deps{Incidents: d.incidents, Members: auth.NewStore(pool, auth.Config{SessionTTL: cfg.SessionTTL}), Orgs: orgs.NewStore(pool)},
		slack.Config{APIURL: cfg.SlackAPIURL, BaseURL: cfg.BaseURL, Logger: logger,
			HTTPClient: d.out.slack})
	d.eventHooks = eventhooks.NewStore(pool, cfg.Encryption).WithGuard(guard)
	return d, nil
}

// workers is the River client of the process (the working one when it
// works jobs, else the insert-only one) and what the crawler loops need.
type workers struct {
	river        *jobs.Client
	works        bool
	registry     *keys.Registry // nil unless works
	ghClient     *ghcrawler.Client
	pasteSources []paste.Source
}

// newWorkers registers every worker in one bundle and builds the working
// client from it. Every working process registers every worker: River
// refuses to insert a job kind the client has no worker for, and the
// crawler role inserts event, fetch and alert jobs. The queues each role
// runs stay separate.
func newWorkers(ctx context.Context, cfg Config, pool *pgxpool.Pool, reg *prometheus.Registry, d domain, logger *slog.Logger) (workers, error) {
	w := workers{river: d.inserter, works: cfg.Has(RoleWorker) || cfg.Has(RoleCrawler)}
	jcfg := jobs.Config{Logger: logger, Metrics: jobs.NewMetrics(reg), JobTimeout: cfg.JobTimeout, RescueAfter: cfg.JobRescueAfter,
		PollOnly: cfg.transactionPooler()}
	if !w.works {
		return w, nil
	}
	jcfg.Workers = river.NewWorkers()
	if cfg.Has(RoleCrawler) {
		jcfg.Crawl = cfg.WorkersCrawl
	}
	if cfg.Has(RoleWorker) {
		jcfg.Scan, jcfg.Incidents, jcfg.Notify = cfg.WorkersScan, cfg.WorkersIncident, cfg.WorkersNotify
		jcfg.PeriodicJobs = append(jcfg.PeriodicJobs, incidents.PeriodicJobs()...)
		jcfg.PeriodicJobs = append(jcfg.PeriodicJobs, slack.PeriodicJobs()...)
		jcfg.PeriodicJobs = append(jcfg.PeriodicJobs, eventhooks.PeriodicJobs()...)
	}
	if err := addCrawlWorkers(ctx, cfg, pool, reg, d, &jcfg, &w, logger); err != nil {
		return w, err
	}
	addNotifyWorkers(cfg, pool, d, jcfg.Workers, logger)
	var err error
	if w.river, err = jobs.NewClient(pool, jcfg); err != nil {
		return w, err
	}
	return w, nil
}

// addCrawlWorkers registers the GitHub and paste workers, which share one
// pipeline to the incident workflow, and keeps what the crawler loops need in w.
func addCrawlWorkers(ctx context.Context, cfg Config, pool *pgxpool.Pool, reg *prometheus.Registry, d domain, jcfg *jobs.Config, w *workers, logger *slog.Logger) error {
	w.registry = keys.NewRegistry(pool, logger).WithRotatedRetention(cfg.RotatedRetention).WithPolling(cfg.pooledPoll(pooledKeyPoll))
	if err := w.registry.Load(ctx); err != nil {
		return err
	}
	pipeline := crawler.NewPipeline(w.registry, d.incidents, reg).WithDedup(pool, cfg.ContentDedupTTL).
		WithRevoker(revoke.NewGitHub(cfg.GitHubAPIURL, d.out.githubRevoke, nil).
			WithBudget(revoke.NewPGBudget(pool, "github-credentials-api", revoke.GitHubCallsPerHour)), logger)
	pushCoverage := ghcrawler.NewPushCoverage(pool, reg)
	eventsWorker := ghcrawler.NewEventsWorker(pool, pipeline, reg, logger).WithPushCoverage(pushCoverage)
	ghcrawler.AddWorkers(jcfg.Workers, eventsWorker)
	if bf := newGitHubBackfill(cfg, pool, eventsWorker, reg, logger); bf != nil {
		// Every working process enqueues the planner when it leads; the
		// crawler role works the crawl queue it runs on.
		ghcrawler.AddBackfillWorkers(jcfg.Workers, bf)
		jcfg.PeriodicJobs = append(jcfg.PeriodicJobs, bf.PeriodicJobs()...)
	}
	var err error
	if w.ghClient, err = newGitHubClient(cfg, reg); err != nil {
		return err
	}
	// Severity weighs where a key leaked: the repository's visibility
	// and reach, asked of GitHub only for documents with findings.
	pipeline.WithExposer(ghcrawler.NewRepoExposure(w.ghClient, time.Hour), logger, reg)
	ghcrawler.AddFetchWorkers(jcfg.Workers, ghcrawler.NewFetcher(w.ghClient, pipeline, githubFetchConfig(cfg), reg, logger).WithPushCoverage(pushCoverage))
	if w.pasteSources, err = newPasteSources(cfg, w.ghClient, d.out.paste); err != nil {
		return err
	}
	paste.AddWorkers(jcfg.Workers, paste.NewFetchWorker(pool, w.pasteSources, pipeline, logger))
	return nil
}

// addNotifyWorkers registers the revocation, Slack and event webhook
// workers; they insert follow-up jobs through the insert-only client.
func addNotifyWorkers(cfg Config, pool *pgxpool.Pool, d domain, bundle *river.Workers, logger *slog.Logger) {
	sender := webhook.NewSender(d.out.hooks, d.out.guard, &d.signingKeys[0], nil)
	incidents.AddWorkers(bundle, incidents.NewRevocationWorker(d.incidents, sender, logger), incidents.NewSweeper(d.incidents))
	slack.AddWorkers(bundle, d.slack)
	hookWorker := eventhooks.NewWorker(pool, d.eventHooks, d.incidents, sender, cfg.BaseURL, logger)
	keyStore := keys.NewStore(pool)
	eventhooks.AddWorkers(bundle, hookWorker, eventhooks.NewStaleSweeper(hookWorker, d.inserter, keyStore),
		eventhooks.NewDigestSweeper(hookWorker, d.inserter, d.incidents, keyStore))
}

// startJobs starts the working client, if the process works jobs, and
// returns whether it runs and how to stop it.
func startJobs(ctx context.Context, cfg Config, w workers, logger *slog.Logger) (*atomic.Bool, func(), error) {
	running := &atomic.Bool{}
	if !w.works {
		return running, func() {}, nil
	}
	// Start with a context that outlives ctx: River's own Stop drains it.
	if err := w.river.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, nil, fmt.Errorf("start river: %w", err)
	}
	running.Store(true)
	return running, func() { stopRiver(w.river, cfg.ShutdownTimeout, logger) }, nil
}

// startBackground starts the key registry's reload and the crawler's
// pollers; the returned stop cancels them and waits.
func startBackground(ctx context.Context, cfg Config, pool *pgxpool.Pool, reg prometheus.Registerer, w workers, logger *slog.Logger) (stop func()) {
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	if w.registry != nil {
		bg.Go(func() { w.registry.Run(bgCtx, cfg.KeyReload) })
	}
	if cfg.Has(RoleCrawler) && cfg.GitHubPoll {
		if len(cfg.GitHubTokens) == 0 {
			logger.Warn("no GitHub tokens (LEAKWATCH_GITHUB_TOKENS): polling unauthenticated at 60 requests/hour, which misses most of the public stream")
		}
		poller := ghcrawler.NewPoller(ghcrawler.PollerConfig{
			Client: w.ghClient, Pool: pool, River: w.river, Feed: ghcrawler.FeedPublic, Path: "events",
			MinInterval: cfg.GitHubMinPoll, Logger: logger, Registerer: reg,
			Mode: cfg.GitHubPollMode, BudgetShare: cfg.GitHubPollShare,
		})
		bg.Go(func() { poller.Run(bgCtx) })
	}
	if cfg.Has(RoleCrawler) {
		startPastePollers(bgCtx, &bg, w.pasteSources, pool, w.river, logger)
	}
	return func() { cancel(); bg.Wait() }
}

// startOpsFor starts the ops listener (metrics, health) for the roles taken.
func startOpsFor(cfg Config, pool *pgxpool.Pool, reg *prometheus.Registry, w workers, riverRunning *atomic.Bool, logger *slog.Logger) (func(), error) {
	ops := opsDeps{Pool: pool, River: w.river, Registry: reg, Roles: cfg.Roles, Logger: logger}
	if w.works {
		ops.RiverRunning = riverRunning
	}
	if cfg.Has(RoleCrawler) && cfg.GitHubPoll {
		ops.GitHubLeader = githubLeader(reg)
	}
	return startOps(cfg.OpsAddr, ops)
}

// newWebServer builds the dashboard and API with their health checks and,
// when configured, OIDC sign-in.
func newWebServer(ctx context.Context, cfg Config, pool *pgxpool.Pool, reg *prometheus.Registry, d domain, w workers, riverRunning *atomic.Bool, demoSlack func() []web.DemoSlackMessage, logger *slog.Logger) (*web.Server, error) {
	checks := []web.Check{
		{Name: "database", Func: func(ctx context.Context) error { return pool.Ping(ctx) }},
		{Name: "migrations", Func: func(ctx context.Context) error { return migrations.Check(ctx, pool) }},
	}
	if w.works {
		checks = append(checks, web.Check{Name: "river", Func: func(context.Context) error {
			if !riverRunning.Load() {
				return errors.New("not running")
			}
			select {
			case <-w.river.Stopped():
				return errors.New("stopped")
			default:
				return nil
			}
		}})
	}
	var oidc *web.OIDC
	if cfg.OIDCIssuer != "" {
		if cfg.OIDCClientID == "" {
			return nil, errors.New("LEAKWATCH_OIDC_ISSUER is set but LEAKWATCH_OIDC_CLIENT_ID is not")
		}
		var err error
		oidc, err = web.NewOIDC(ctx, web.OIDCConfig{
			Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret,
			RedirectURL: cfg.BaseURL + "/auth/oidc/callback",
			HTTPClient:  d.out.oidc,
		})
		if err != nil {
			return nil, err
		}
	}
	return web.New(web.Config{
		Incidents: d.incidents, Checks: checks, Gatherer: reg, Registry: reg, Logger: logger, Paste: paste.NewStore(pool),
		Auth: auth.NewStore(pool, auth.Config{SessionTTL: cfg.SessionTTL}), Orgs: orgs.NewStore(pool).WithBox(cfg.Encryption).WithGuard(outboundGuard(cfg)), Keys: keys.NewStore(pool).WithGuard(outboundGuard(cfg)).OnRotateTx(d.incidents.KeyRotatedTx).OnStateTx(d.incidents.KeyStateChangedTx), Audit: audit.NewStore(pool),
		BaseURL: cfg.BaseURL, OIDC: oidc, GitHub: ghcrawler.NewFeeds(pool),
		Slack: d.slack, EventHooks: d.eventHooks, DemoSlack: demoSlack,
	})
}

// serveHTTP serves srv until ctx ends, then shuts it down within the
// shutdown timeout.
func serveHTTP(ctx context.Context, cfg Config, srv *web.Server, opts serveOpts, started func(addr string), pool *pgxpool.Pool, logger *slog.Logger) error {
	ln := opts.listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
		}
	}
	httpSrv := srv.HTTPServer()                  // with read timeouts: a stalled body is cut off
	httpSrv.RegisterOnShutdown(srv.CloseStreams) // live dashboard streams would hold Shutdown open
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	logger.Info("web listening", slog.String("addr", ln.Addr().String()), slog.String("dashboard", cfg.BaseURL+"/incidents"))
	if opts.demoSlack == nil {
		nextStep(ctx, orgs.NewStore(pool), logger)
	}
	if started != nil {
		started(ln.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
	logger.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		logger.Warn("http shutdown", slog.Any("error", err))
	}
	return nil
}

// nextStep tells a new installation what to do first: with no organisation
// nobody can sign in, so the sign-in page alone is a dead end.
func nextStep(ctx context.Context, store *orgs.Store, logger *slog.Logger) {
	exists, err := store.Any(ctx)
	if err != nil {
		logger.Warn("count organisations", slog.Any("error", err))
		return
	}
	if !exists {
		logger.Info("no organisation yet; create one and its owner's sign-in link with: leakwatch orgs create acme --owner you@example.com")
	}
}

// outboundGuard is the deployment's one guard on outgoing requests: every
// client Serve builds (Slack, event and revocation webhooks, GitHub, paste
// sites, OIDC discovery) dials through it. Operator-configured URLs are
// trusted to name the right service but not to reach private addresses
// unless LEAKWATCH_WEBHOOK_ALLOW_NETS says so.
func outboundGuard(cfg Config) webhook.Guard {
	return webhook.Guard{Allow: cfg.WebhookAllowNets, Proxy: cfg.OutboundProxy}
}

// outbound holds the HTTP clients of every outgoing request type, all built
// by webhook.NewHTTPClient on the deployment's guard (the GitHub API client
// wraps webhook.NewTransport, see newGitHubClient).
type outbound struct {
	guard webhook.Guard
	// hooks posts event webhooks and revocation requests: never redirected.
	hooks *http.Client
	// slack posts to the Web API and incoming webhooks: never redirected.
	slack *http.Client
	// githubRevoke reports leaked GitHub tokens: never redirected.
	githubRevoke *http.Client
	// paste and oidc fetch from sites that may move content: a few
	// redirects, each hop checked again.
	paste, oidc *http.Client
}

func newOutbound(cfg Config) outbound {
	g := outboundGuard(cfg)
	return outbound{
		guard:        g,
		hooks:        webhook.NewHTTPClient(g, cfg.WebhookTimeout),
		slack:        webhook.NewHTTPClient(g, 10*time.Second),
		githubRevoke: webhook.NewHTTPClient(g, 10*time.Second),
		paste:        webhook.FollowRedirects(webhook.NewHTTPClient(g, 30*time.Second), g, 3),
		oidc:         webhook.FollowRedirects(webhook.NewHTTPClient(g, 15*time.Second), g, 3),
	}
}

// stopRiver lets running jobs finish until the deadline, then cancels them.
func stopRiver(c *jobs.Client, timeout time.Duration, logger *slog.Logger) {
	soft, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.Stop(soft); err == nil {
		return
	}
	logger.Warn("jobs still running after the shutdown timeout; cancelling them")
	hard, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := c.StopAndCancel(hard); err != nil {
		logger.Error("stop river", slog.Any("error", err))
	}
}
