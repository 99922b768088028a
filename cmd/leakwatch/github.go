package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
)

// newGitHubClient builds the one GitHub client of the process: pollers and
// fetch jobs share its token pool, so budgets are counted once.
func newGitHubClient(cfg Config, reg prometheus.Registerer) (*ghcrawler.Client, error) {
	c, err := ghcrawler.NewClientWithConfig(ghcrawler.ClientConfig{
		BaseURL: cfg.GitHubAPIURL, RawURL: cfg.GitHubRawURL, Tokens: cfg.GitHubTokens,
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
// Its HTTP client streams files of up to a gigabyte, so it bounds the wait
// for headers, never the whole download.
// TODO(lead): swap in the SSRF-guarded client when it lands.
func newGitHubBackfill(cfg Config, pool *pgxpool.Pool, ew *ghcrawler.EventsWorker, reg prometheus.Registerer, logger *slog.Logger) *ghcrawler.Backfill {
	if cfg.GHArchiveURL == "" {
		return nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	return ghcrawler.NewBackfill(ghcrawler.BackfillConfig{
		BaseURL: cfg.GHArchiveURL, HTTP: &http.Client{Transport: tr}, Pool: pool, Events: ew,
		PublishDelay: cfg.GHArchivePublishDelay, GiveUpAfter: cfg.GHArchiveGiveUpAfter, Coverage: cfg.GHArchiveCoverage,
		Logger: logger, Registerer: reg,
	})
}
