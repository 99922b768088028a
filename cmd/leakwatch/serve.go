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
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/revoke"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/database"
	"github.com/leakwatch/leakwatch/internal/jobs"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/webhook"
	"github.com/leakwatch/leakwatch/migrations"
	"github.com/leakwatch/leakwatch/web"
)

func runServeCommand(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	roles := fs.String("roles", "", "roles to take, overriding LEAKWATCH_ROLES: any of web,worker,crawler")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: leakwatch serve [--roles web,worker,crawler]\n\nRuns the service until SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
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
	logger.Info("starting leakwatch", slog.String("version", versionString()), slog.String("roles", strings.Join(cfg.Roles, ",")))
	db, err := database.Open(ctx, dbConfig(cfg), logger)
	if err != nil {
		return err
	}
	defer db.Close()
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
	jcfg := jobs.Config{Logger: logger, Metrics: jobs.NewMetrics(reg), JobTimeout: cfg.JobTimeout, RescueAfter: cfg.JobRescueAfter}
	var registry *keys.Registry
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
	}
	riverClient, err := jobs.NewClient(pool, jcfg)
	if err != nil {
		return err
	}
	incidentSvc := incidents.NewService(pool, riverClient, logger).WithBox(cfg.Encryption)
	incidentSvc.RegisterMetrics(reg)
	// Without LEAKWATCH_WEBHOOK_SIGNING_KEY, a key is generated once and kept
	// in the database, so every replica signs alike.
	signingKeys, err := webhook.LoadOrCreateKeys(ctx, pool, cfg.WebhookSigningKeys)
	if err != nil {
		return err
	}
	incidentSvc.SetWebhookKeys(signingKeys)
	// Every timeline entry reaches Slack and the event webhooks through this
	// one hook.
	slackSvc := slack.NewService(pool, slack.NewStore(pool, cfg.Encryption), riverClient, incidentSvc,
		slack.Config{APIURL: cfg.SlackAPIURL, BaseURL: cfg.BaseURL, Logger: logger})
	eventHooks := eventhooks.NewStore(pool, cfg.Encryption)
	incidentSvc.SetTimelineNotifier(incidents.Notifiers{slackSvc, eventhooks.NewNotifier(riverClient)})

	// Every working process registers every worker: River refuses to insert
	// a job kind the client has no worker for, and the crawler role inserts
	// event, fetch and alert jobs. The queues each role runs stay separate.
	var ghClient *ghcrawler.Client
	var pasteSources []paste.Source
	if works {
		registry = keys.NewRegistry(pool, logger).WithRotatedRetention(cfg.RotatedRetention)
		if err := registry.Load(ctx); err != nil {
			return err
		}
		pipeline := crawler.NewPipeline(registry, incidentSvc, reg).WithDedup(pool, cfg.ContentDedupTTL).
			WithRevoker(revoke.NewGitHub(cfg.GitHubAPIURL, nil, nil).
				WithBudget(revoke.NewPGBudget(pool, "github-credentials-api", revoke.GitHubCallsPerHour)), logger)
		pushCoverage := ghcrawler.NewPushCoverage(pool, reg)
		ghcrawler.AddWorkers(jcfg.Workers, ghcrawler.NewEventsWorker(pipeline, reg, logger).WithPushCoverage(pushCoverage))
		if ghClient, err = newGitHubClient(cfg, reg); err != nil {
			return err
		}
		// Severity weighs where a key leaked: the repository's visibility
		// and reach, asked of GitHub only for documents with findings.
		pipeline.WithExposer(ghcrawler.NewRepoExposure(ghClient, time.Hour), logger, reg)
		ghcrawler.AddFetchWorkers(jcfg.Workers, ghcrawler.NewFetcher(ghClient, pipeline, githubFetchConfig(cfg), reg, logger).WithPushCoverage(pushCoverage))
		if pasteSources, err = newPasteSources(cfg, ghClient); err != nil {
			return err
		}
		paste.AddWorkers(jcfg.Workers, paste.NewFetchWorker(pool, pasteSources, pipeline, logger))
		guard := webhook.Guard{Allow: cfg.WebhookAllowNets}
		sender := webhook.NewSender(webhook.NewHTTPClient(guard, cfg.WebhookTimeout), guard, &signingKeys[0], nil)
		incidents.AddWorkers(jcfg.Workers, incidents.NewRevoker(incidentSvc, sender, logger), incidents.NewSweeper(incidentSvc))
		slack.AddWorkers(jcfg.Workers, slackSvc)
		hookWorker := eventhooks.NewWorker(pool, eventHooks, sender, cfg.BaseURL, logger)
		eventhooks.AddWorkers(jcfg.Workers, hookWorker, eventhooks.NewStaleSweeper(hookWorker, riverClient),
			eventhooks.NewDigestSweeper(hookWorker, riverClient, incidentSvc))
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
		})
		bg.Go(func() { poller.Run(bgCtx) })
	}
	if cfg.Has(RoleCrawler) {
		startPastePollers(bgCtx, &bg, pasteSources, pool, riverClient, logger)
	}

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
		})
		if err != nil {
			return err
		}
	}
	srv, err := web.New(web.Config{
		Incidents: incidentSvc, Checks: checks, Gatherer: reg, Registry: reg, Logger: logger, Paste: paste.NewStore(pool),
		Auth: auth.NewStore(pool, auth.Config{SessionTTL: cfg.SessionTTL}), Orgs: orgs.NewStore(pool).WithBox(cfg.Encryption), Keys: keys.NewStore(pool).OnRotateTx(incidentSvc.KeyRotatedTx).OnStateTx(incidentSvc.KeyStateChangedTx), Audit: audit.NewStore(pool),
		BaseURL: cfg.BaseURL, OIDC: oidc, GitHub: ghcrawler.NewFeeds(pool),
		Slack: slackSvc, EventHooks: eventHooks,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	httpSrv.RegisterOnShutdown(srv.CloseStreams) // live dashboard streams would hold Shutdown open
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	logger.Info("web listening", slog.String("addr", ln.Addr().String()))
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
