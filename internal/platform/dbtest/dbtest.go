// Package dbtest gives each test its own migrated PostgreSQL database, cloned
// from a template that is migrated once per schema version (pgtestdb), so tests
// run in parallel against the real server with no shared mutable state.
//
// TEST_DATABASE_URL names an admin connection to the server; the default is
// the local server on 127.0.0.1:5432 as user postgres (trust auth).
package dbtest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // pgtestdb's admin connection
	"github.com/peterldowns/pgtestdb"

	"github.com/leakwatch/leakwatch/migrations"
)

// DefaultURL is used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// URL returns a connection URL to a fresh, fully migrated database that is
// dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	conf := adminConfig(t)
	inst := pgtestdb.Custom(t, conf, migrator{})
	return inst.URL()
}

// New returns a pool on a fresh, fully migrated database, closed and dropped
// when the test ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), URL(t))
	if err != nil {
		t.Fatalf("open test pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func adminConfig(t testing.TB) pgtestdb.Config {
	raw := os.Getenv("TEST_DATABASE_URL")
	if raw == "" {
		raw = DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	pw, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	db := u.Path
	if len(db) > 0 && db[0] == '/' {
		db = db[1:]
	}
	if db == "" {
		db = "postgres"
	}
	opts := u.RawQuery
	if opts == "" {
		opts = "sslmode=disable"
	}
	return pgtestdb.Config{
		DriverName:                "pgx",
		Host:                      u.Hostname(),
		Port:                      port,
		User:                      u.User.Username(),
		Password:                  pw,
		Database:                  db,
		Options:                   opts,
		ForceTerminateConnections: true,
	}
}

// migrator applies Leakwatch's migrations (River's included) to the template.
type migrator struct{}

func (migrator) Hash() (string, error) {
	all, err := migrations.All()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	// River's schema version travels with the module version in go.sum; the
	// number of River migrations embedded stands in for it here.
	fmt.Fprintf(h, "river:%s\n", migrations.RiverVersionTag())
	for _, m := range all {
		fmt.Fprintf(h, "%d %s\n%s\n", m.Version, m.Name, m.SQL)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func (migrator) Migrate(ctx context.Context, _ *sql.DB, conf pgtestdb.Config) error {
	pool, err := pgxpool.New(ctx, conf.URL())
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrations.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
}
