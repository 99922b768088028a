package main

import (
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
