package main

import (
	"context"
	"fmt"
	"io"

	"github.com/leakwatch/leakwatch/internal/platform/database"
	"github.com/leakwatch/leakwatch/migrations"
)

func runMigrate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if wantsHelp(args) {
		fmt.Fprintln(stdout, "Usage: leakwatch migrate [status]\n\nApplies pending migrations (River's, then Leakwatch's), or lists both sets with `status`.")
		return 0
	}
	if len(args) > 1 || (len(args) == 1 && args[0] != "status") {
		fmt.Fprintln(stderr, "leakwatch migrate: usage: leakwatch migrate [status]")
		return 2
	}
	cfg, ok := loadConfigOrFail(stderr)
	if !ok {
		return 2
	}
	logger := newLogger(cfg, stderr)
	db, err := database.Open(ctx, dbConfig(cfg), logger)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch migrate:", err)
		return 1
	}
	defer db.Close()
	if len(args) == 0 {
		if err := migrations.Migrate(ctx, db.Pool, logger); err != nil {
			fmt.Fprintln(stderr, "leakwatch migrate:", err)
			return 1
		}
		fmt.Fprintln(stdout, "migrations applied")
		return 0
	}
	river, err := migrations.RiverStatus(ctx, db.Pool)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch migrate status:", err)
		return 1
	}
	fmt.Fprintln(stdout, "River (job queue):")
	for _, m := range river {
		state := "pending"
		if m.Applied {
			state = "applied"
		}
		fmt.Fprintf(stdout, "  river %03d %-48s %s\n", m.Version, m.Name, state)
	}
	fmt.Fprintln(stdout, "Leakwatch:")
	all, err := migrations.Status(ctx, db.Pool)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch migrate status:", err)
		return 1
	}
	for _, m := range all {
		state := "pending"
		if m.AppliedAt != nil {
			state = "applied " + m.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(stdout, "  %-38s %s\n", m.Name, state)
	}
	if err := migrations.Check(ctx, db.Pool); err != nil {
		fmt.Fprintln(stdout, err)
	}
	return 0
}

func dbConfig(cfg Config) database.Config {
	return database.Config{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, EmbeddedPort: cfg.EmbeddedPGPort,
		TransactionPooler: cfg.transactionPooler()}
}
