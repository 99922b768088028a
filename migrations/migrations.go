// Package migrations carries Leakwatch's schema in the binary and applies it.
//
// Application migrations are numbered .sql files under sql/, applied in order,
// one transaction each, and recorded in schema_migrations. River's own tables
// come from rivermigrate, so River upgrades ship their own SQL.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed sql/*.sql
var files embed.FS

// ErrOutdated is returned by Check when the database lacks migrations the
// binary carries.
var ErrOutdated = errors.New("database schema is outdated")

// Migration is one numbered schema step.
type Migration struct {
	Version   int
	Name      string
	SQL       string
	AppliedAt *time.Time // nil when pending
}

// All returns the embedded migrations in order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, "sql")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("migration %q: name must be NNNN_description.sql", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %q: bad version: %w", name, err)
		}
		body, err := files.ReadFile(path.Join("sql", name))
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %q and %q share version %d", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}

const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// lockID serialises concurrent migrators (two replicas starting at once).
const lockID = 7_466_871_201

// Migrate applies River's migrations and then every pending application
// migration, each in its own transaction.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	// A transaction-level lock in a transaction held open until the end: a
	// transaction pooler (PgBouncer) keeps a transaction on one server
	// session, where a session-level lock would stay behind on whichever
	// session took it.
	lock, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin migration lock: %w", err)
	}
	defer lock.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockID); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}

	rm, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: logger})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	// rivermigrate logs each version it applies.
	if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}

	if _, err := conn.Exec(ctx, createTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	all, err := statusConn(ctx, conn.Conn())
	if err != nil {
		return err
	}
	for _, m := range all {
		if m.AppliedAt != nil {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		logger.Info("applied migration", slog.String("name", m.Name))
	}
	return nil
}

// Status returns every embedded migration with its applied time, if any.
func Status(ctx context.Context, pool *pgxpool.Pool) ([]Migration, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	return statusConn(ctx, conn.Conn())
}

func statusConn(ctx context.Context, conn *pgx.Conn) ([]Migration, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for schema_migrations: %w", err)
	}
	if !exists {
		return all, nil
	}
	rows, err := conn.Query(ctx, `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	applied := map[int]time.Time{}
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			return nil, fmt.Errorf("scan schema_migrations: %w", err)
		}
		applied[v] = at
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	for i := range all {
		if at, ok := applied[all[i].Version]; ok {
			all[i].AppliedAt = &at
		}
	}
	return all, nil
}

// Check returns ErrOutdated (wrapped, naming what is missing) unless every
// application migration and River's migrations are applied.
func Check(ctx context.Context, pool *pgxpool.Pool) error {
	all, err := Status(ctx, pool)
	if err != nil {
		return err
	}
	var pending []string
	for _, m := range all {
		if m.AppliedAt == nil {
			pending = append(pending, m.Name)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: pending migrations %s (run `leakwatch migrate`)", ErrOutdated, strings.Join(pending, ", "))
	}
	rm, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	res, err := rm.Migrate(ctx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{DryRun: true})
	if err != nil {
		return fmt.Errorf("check river migrations: %w", err)
	}
	if len(res.Versions) > 0 {
		return fmt.Errorf("%w: %d River migrations pending (run `leakwatch migrate`)", ErrOutdated, len(res.Versions))
	}
	return nil
}

// RiverVersionTag identifies River's migration line carried by this binary,
// so test templates are rebuilt when River adds migrations.
func RiverVersionTag() string {
	rm, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return "unknown"
	}
	return strconv.Itoa(len(rm.AllVersions()))
}

// RiverMigration is one of River's own schema steps (rivermigrate).
type RiverMigration struct {
	Version int
	Name    string
	Applied bool
}

// RiverStatus lists River's migrations and whether each is applied.
func RiverStatus(ctx context.Context, pool *pgxpool.Pool) ([]RiverMigration, error) {
	rm, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return nil, fmt.Errorf("river migrator: %w", err)
	}
	existing, err := rm.ExistingVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("read river migrations: %w", err)
	}
	applied := map[int]bool{}
	for _, m := range existing {
		applied[m.Version] = true
	}
	var out []RiverMigration
	for _, m := range rm.AllVersions() {
		out = append(out, RiverMigration{Version: m.Version, Name: m.Name, Applied: applied[m.Version]})
	}
	return out, nil
}
