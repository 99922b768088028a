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
	db := opts.db
	if db == nil {
		var err error
		if db, err = database.Open(ctx, dbConfig(cfg), logger); err != nil {
			return err
		}
		defer db.Close()
	}
	pool := db.Pool

	if cfg.AutoMigrate {
		if err := migrations.Migrate(ctx, pool, logger); err != nil {
			return err
		}
	} else if err := migrations.Check(ctx, pool); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(paste.NewCollector(paste.NewStore(pool)))

	works := cfg.Has(RoleWorker) || cfg.Has(RoleCrawler)
	// River's way out of the loop between a client and the services its
	// workers need: the services insert through an insert-only client,
	// their workers go into the bundle, then the working client is built
	// with the bundle complete. A web-only process needs no other client.
	inserter, err := jobs.NewClient(pool, jobs.Config{Logger: logger})
	if err != nil {
		return err
	}
	out := newOutbound(cfg)
	guard := outboundGuard(cfg)
	// Without LEAKWATCH_WEBHOOK_SIGNING_KEY, a key is generated once and kept
	// in the database, so every replica signs alike.
	signingKeys, err := webhook.LoadOrCreateKeys(ctx, pool, cfg.Encryption, cfg.WebhookSigningKeys)
	if err != nil {
		return err
	}
	// Every timeline entry reaches Slack and the event webhooks through this
	// one hook.
	incidentSvc := incidents.NewService(pool, inserter, logger, incidents.Config{
		Notifier:    incidents.Notifiers{slack.NewNotifier(inserter), eventhooks.NewNotifier(inserter)},
		Box:         cfg.Encryption,
		Guard:       &guard,
		WebhookKeys: signingKeys,
	})
	incidentSvc.RegisterMetrics(reg)
	slackSvc := slack.NewService(pool, slack.NewStore(pool, cfg.Encryption), inserter, incidentSvc,
		slack.Config{APIURL: cfg.SlackAPIURL, BaseURL: cfg.BaseURL, Logger: logger,
			HTTPClient: out.slack})
	eventHooks := eventhooks.NewStore(pool, cfg.Encryption).WithGuard(guard)

	jcfg := jobs.Config{Logger: logger, Metrics: jobs.NewMetrics(reg), JobTimeout: cfg.JobTimeout, RescueAfter: cfg.JobRescueAfter}
	var registry *keys.Registry
	// Every working process registers every worker: River refuses to insert
	// a job kind the client has no worker for, and the crawler role inserts
	// event, fetch and alert jobs. The queues each role runs stay separate.
	var ghClient *ghcrawler.Client
	var pasteSources []paste.Source
	if works {
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
		registry = keys.NewRegistry(pool, logger).WithRotatedRetention(cfg.RotatedRetention)
		if err := registry.Load(ctx); err != nil {
			return err
		}
		pipeline := crawler.NewPipeline(registry, incidentSvc, reg).WithDedup(pool, cfg.ContentDedupTTL).
			WithRevoker(revoke.NewGitHub(cfg.GitHubAPIURL, out.githubRevoke, nil).
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
		if ghClient, err = newGitHubClient(cfg, reg); err != nil {
			return err
		}
		// Severity weighs where a key leaked: the repository's visibility
		// and reach, asked of GitHub only for documents with findings.
		pipeline.WithExposer(ghcrawler.NewRepoExposure(ghClient, time.Hour), logger, reg)
		ghcrawler.AddFetchWorkers(jcfg.Workers, ghcrawler.NewFetcher(ghClient, pipeline, githubFetchConfig(cfg), reg, logger).WithPushCoverage(pushCoverage))
		if pasteSources, err = newPasteSources(cfg, ghClient, out.paste); err != nil {
			return err
		}
		paste.AddWorkers(jcfg.Workers, paste.NewFetchWorker(pool, pasteSources, pipeline, logger))
		sender := webhook.NewSender(out.hooks, out.guard, &signingKeys[0], nil)
		incidents.AddWorkers(jcfg.Workers, incidents.NewRevocationWorker(incidentSvc, sender, logger), incidents.NewSweeper(incidentSvc))
		slack.AddWorkers(jcfg.Workers, slackSvc)
		hookWorker := eventhooks.NewWorker(pool, eventHooks, sender, cfg.BaseURL, logger)
		eventhooks.AddWorkers(jcfg.Workers, hookWorker, eventhooks.NewStaleSweeper(hookWorker, inserter),
			eventhooks.NewDigestSweeper(hookWorker, inserter, incidentSvc))
	}
	riverClient := inserter
	if works {
		if riverClient, err = jobs.NewClient(pool, jcfg); err != nil {
			return err
		}
	}

	var riverRunning atomic.Bool
	if works {
		// Start with a context that outlives ctx: River's own Stop drains it.
		if err := riverClient.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("start river: %w", err)
		}
		riverRunning.Store(true)
		defer stopRiver(riverClient, cfg.ShutdownTimeout, logger)
	}

	// Background loops stop before River so they insert no work into a
	// stopping client.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	defer func() { stopBackground(); bg.Wait() }()
	if registry != nil {
		bg.Go(func() { registry.Run(bgCtx, cfg.KeyReload) })
	}

	if cfg.Has(RoleCrawler) && cfg.GitHubPoll {
		if len(cfg.GitHubTokens) == 0 {
			logger.Warn("no GitHub tokens (LEAKWATCH_GITHUB_TOKENS): polling unauthenticated at 60 requests/hour, which misses most of the public stream")
		}
		poller := ghcrawler.NewPoller(ghcrawler.PollerConfig{
			Client: ghClient, Pool: pool, River: riverClient, Feed: ghcrawler.FeedPublic, Path: "events",
			MinInterval: cfg.GitHubMinPoll, Logger: logger, Registerer: reg,
			Mode: cfg.GitHubPollMode, BudgetShare: cfg.GitHubPollShare,
		})
		bg.Go(func() { poller.Run(bgCtx) })
	}
	if cfg.Has(RoleCrawler) {
		startPastePollers(bgCtx, &bg, pasteSources, pool, riverClient, logger)
	}

	ops := opsDeps{Pool: pool, River: riverClient, Registry: reg, Roles: cfg.Roles, Logger: logger}
	if works {
		ops.RiverRunning = &riverRunning
	}
	if cfg.Has(RoleCrawler) && cfg.GitHubPoll {
		ops.GitHubLeader = githubLeader(reg)
	}
	stopOps, err := startOps(cfg.OpsAddr, ops)
	if err != nil {
		return err
	}
	defer stopOps()

	if !cfg.Has(RoleWeb) {
		<-ctx.Done()
		logger.Info("shutting down")
		return nil
	}

	checks := []web.Check{
		{Name: "database", Func: func(ctx context.Context) error { return pool.Ping(ctx) }},
		{Name: "migrations", Func: func(ctx context.Context) error { return migrations.Check(ctx, pool) }},
	}
	if works {
		checks = append(checks, web.Check{Name: "river", Func: func(context.Context) error {
			if !riverRunning.Load() {
				return errors.New("not running")
			}
			select {
			case <-riverClient.Stopped():
				return errors.New("stopped")
			default:
				return nil
			}
		}})
	}
	var oidc *web.OIDC
	if cfg.OIDCIssuer != "" {
		if cfg.OIDCClientID == "" {
			return errors.New("LEAKWATCH_OIDC_ISSUER is set but LEAKWATCH_OIDC_CLIENT_ID is not")
		}
		oidc, err = web.NewOIDC(ctx, web.OIDCConfig{
			Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret,
			RedirectURL: cfg.BaseURL + "/auth/oidc/callback",
			HTTPClient:  out.oidc,
		})
		if err != nil {
			return err
		}
	}
	srv, err := web.New(web.Config{
		Incidents: incidentSvc, Checks: checks, Gatherer: reg, Registry: reg, Logger: logger, Paste: paste.NewStore(pool),
		Auth: auth.NewStore(pool, auth.Config{SessionTTL: cfg.SessionTTL}), Orgs: orgs.NewStore(pool).WithBox(cfg.Encryption).WithGuard(outboundGuard(cfg)), Keys: keys.NewStore(pool).WithGuard(outboundGuard(cfg)).OnRotateTx(incidentSvc.KeyRotatedTx).OnStateTx(incidentSvc.KeyStateChangedTx), Audit: audit.NewStore(pool),
		BaseURL: cfg.BaseURL, OIDC: oidc, GitHub: ghcrawler.NewFeeds(pool),
		Slack: slackSvc, EventHooks: eventHooks, DemoSlack: opts.demoSlack,
	})
	if err != nil {
		return err
	}
	ln := opts.listener
	if ln == nil {
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
