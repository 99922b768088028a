package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// loadPasteSources reads LEAKWATCH_PASTE_SOURCES_FILE.
func loadPasteSources(path string) (paste.Config, error) {
	if path == "" {
		return paste.Config{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return paste.Config{}, err
	}
	return paste.ParseConfig(b)
}

// newPasteSources builds the configured paste sources; gists go through the
// process's one GitHub client (its token pool and rate limits).
// client is the guarded client of newOutbound: feeds name their items' raw
// URLs, so a hostile feed must not reach internal addresses through us.
func newPasteSources(cfg Config, gh *ghcrawler.Client, client *http.Client) ([]paste.Source, error) {
	deps := paste.Deps{HTTP: client}
	if gh != nil {
		deps.GitHub = gh.Client
	}
	srcs, err := paste.NewSources(cfg.PasteSources, deps)
	if err != nil {
		return nil, fmt.Errorf("paste sources: %w", err)
	}
	return srcs, nil
}

// startPastePollers starts a poller per source; each polls only while its
// process holds the source's lock, so one process polls a source.
func startPastePollers(ctx context.Context, bg *sync.WaitGroup, sources []paste.Source, pool *pgxpool.Pool, river *jobs.Client, logger *slog.Logger) {
	for _, src := range sources {
		p := paste.NewPoller(paste.PollerConfig{Source: src, Pool: pool, River: river, Logger: logger})
		bg.Go(func() { p.Run(ctx) })
	}
}
