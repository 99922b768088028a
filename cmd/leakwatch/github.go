package main

import (
	"github.com/prometheus/client_golang/prometheus"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/internal/webhook"
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
