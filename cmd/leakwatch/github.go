package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// newGitHubClient builds the one GitHub client of the process: pollers and
// fetch jobs share its token pool, so budgets are counted once.
func newGitHubClient(cfg Config, reg prometheus.Registerer) (*ghcrawler.Client, error) {
	// The API URL is the operator's, but its requests still dial through
	// the deployment's guard (LEAKWATCH_WEBHOOK_ALLOW_NETS admits a
	// GitHub Enterprise on a private network).
	tr := webhook.NewTransport(outboundGuard(cfg), 0)
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 128
	c, err := ghcrawler.NewClientWithConfig(ghcrawler.ClientConfig{
		BaseURL: cfg.GitHubAPIURL, RawURL: cfg.GitHubRawURL, Tokens: cfg.GitHubTokens, Transport: tr,
	})
	if err != nil {
		return nil, err
	}
	if reg != nil {
		reg.MustRegister(c.Tokens)
	}
	return c, nil
}

// githubFetchConfig passes the crawler's bounds down.
func githubFetchConfig(cfg Config) ghcrawler.FetchConfig {
	return ghcrawler.FetchConfig{
		MaxPatchBytes: cfg.GitHubMaxPatchBytes,
		TreeMaxFiles:  cfg.GitHubTreeMaxFiles,
		TreeMaxBytes:  int64(cfg.GitHubTreeMaxBytes),
		PushTimeout:   cfg.GitHubPushTimeout,
	}
}

// newGitHubBackfill builds the GH Archive backfill, or nil when it is off.
// Its client dials through the deployment's outgoing-request guard like
// every other, follows at most 3 redirects (each hop checked again), and
// streams files of up to a gigabyte: it bounds the wait for headers, never
// the whole download (a run's context bounds that).
func newGitHubBackfill(cfg Config, pool *pgxpool.Pool, ew *ghcrawler.EventsWorker, reg prometheus.Registerer, logger *slog.Logger) *ghcrawler.Backfill {
	if cfg.GHArchiveURL == "" {
		return nil
	}
	g := outboundGuard(cfg)
	client := webhook.FollowRedirects(&http.Client{Transport: webhook.NewTransport(g, 30*time.Second)}, g, 3)
	return ghcrawler.NewBackfill(ghcrawler.BackfillConfig{
		BaseURL: cfg.GHArchiveURL, HTTP: client, Pool: pool, Events: ew,
		PublishDelay: cfg.GHArchivePublishDelay, GiveUpAfter: cfg.GHArchiveGiveUpAfter, Coverage: cfg.GHArchiveCoverage,
		Logger: logger, Registerer: reg,
	})
}
