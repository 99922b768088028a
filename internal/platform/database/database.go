// Package database opens Leakwatch's PostgreSQL pool.
//
// With an explicit URL it simply connects. Without one it looks for a local
// server (127.0.0.1:5432, then the default Unix sockets), creates database
// "leakwatch" there if missing, and when no server answers it starts an
// embedded PostgreSQL from the installed binaries (or downloaded ones) with its
// data under a data directory, so `leakwatch serve` works on a fresh machine.
package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultName is the database created on a local server when no URL is given.
const DefaultName = "leakwatch"

// Config says where the database is.
type Config struct {
	URL          string // DATABASE_URL; empty means "find or start a local one"
	DataDir      string // where the embedded server keeps its data
	EmbeddedPort uint32 // port for the embedded server
	MaxConns     int32
	// Name is the database to use on the server (default DefaultName, or
	// the URL's own). With Reset it is dropped and created afresh, which is
	// how `leakwatch demo` starts over without touching the real database.
	Name  string
	Reset bool
	// TransactionPooler says DATABASE_URL reaches PostgreSQL through a pooler
	// in transaction mode (PgBouncer pool_mode=transaction): consecutive
	// statements outside a transaction may run on different server
	// sessions, so no named prepared statement may outlive one.
	TransactionPooler bool
}

// DB is an open pool plus whatever must be stopped with it.
type DB struct {
	Pool     *pgxpool.Pool
	URL      string // with any password removed; safe to log
	embedded *embeddedServer
}

// Close closes the pool and stops an embedded server.
func (db *DB) Close() {
	db.Pool.Close()
	if db.embedded != nil {
		db.embedded.stop()
	}
}

// Open connects according to cfg.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*DB, error) {
	name := cfg.Name
	if name == "" {
		name = DefaultName
	}
	if cfg.URL != "" && (cfg.Name != "" || cfg.Reset) {
		// The URL names the server (its database may not exist yet); the
		// database is name, created from the maintenance database.
		maint, err := url.Parse(cfg.URL)
		if err != nil {
			return nil, errors.New("parse database URL: invalid connection string")
		}
		maint.Path = "/postgres"
		dbURL, err := prepareDatabase(ctx, maint.String(), name, cfg.Reset)
		if err != nil {
			return nil, err
		}
		pool, err := newPool(ctx, dbURL, cfg.MaxConns, cfg.TransactionPooler)
		if err != nil {
			return nil, err
		}
		return &DB{Pool: pool, URL: Redact(dbURL)}, nil
	}
	if cfg.URL != "" {
		pool, err := newPool(ctx, cfg.URL, cfg.MaxConns, cfg.TransactionPooler)
		if err != nil {
			return nil, err
		}
		return &DB{Pool: pool, URL: Redact(cfg.URL)}, nil
	}

	for _, base := range localCandidates() {
		if !answers(ctx, base) {
			continue
		}
		dbURL, err := prepareDatabase(ctx, base, name, cfg.Reset)
		if err != nil {
			return nil, err
		}
		pool, err := NewPool(ctx, dbURL, cfg.MaxConns)
		if err != nil {
			return nil, err
		}
		logger.Info("using local PostgreSQL", slog.String("database_url", Redact(dbURL)))
		return &DB{Pool: pool, URL: Redact(dbURL)}, nil
	}

	logger.Info("no PostgreSQL server answered locally; starting an embedded one", slog.String("data_dir", cfg.DataDir))
	srv, err := startEmbedded(ctx, cfg.DataDir, cfg.EmbeddedPort, logger)
	if err != nil {
		return nil, fmt.Errorf("start embedded PostgreSQL (set DATABASE_URL to use another server): %w", err)
	}
	dbURL := srv.url
	if name != DefaultName || cfg.Reset {
		if dbURL, err = prepareDatabase(ctx, srv.url, name, cfg.Reset); err != nil {
			srv.stop()
			return nil, err
		}
	}
	pool, err := NewPool(ctx, dbURL, cfg.MaxConns)
	if err != nil {
		srv.stop()
		return nil, err
	}
	logger.Info("embedded PostgreSQL running", slog.String("database_url", Redact(dbURL)))
	return &DB{Pool: pool, URL: Redact(dbURL), embedded: srv}, nil
}

// NewPool opens and pings a pool.
func NewPool(ctx context.Context, dbURL string, maxConns int32) (*pgxpool.Pool, error) {
	return newPool(ctx, dbURL, maxConns, false)
}

func newPool(ctx context.Context, dbURL string, maxConns int32, txPooler bool) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		// pgx echoes the URL (and so any password) in parse errors.
		return nil, errors.New("parse database URL: invalid connection string")
	}
	if maxConns > 0 {
		pcfg.MaxConns = maxConns
	}
	if txPooler {
		// pgx caches named prepared statements per connection by default;
		// behind a transaction pooler the next statement may reach a server
		// session that never saw them (PgBouncer before 1.21 cannot track
		// them). Cached descriptions use only the unnamed statement, each
		// step one self-contained round trip, which pgx documents as
		// PgBouncer-safe; unlike exec mode the parameter types are the
		// server's, so []byte still reaches a jsonb column as JSON.
		pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		pcfg.ConnConfig.StatementCacheCapacity = 0
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open pool for %s: %w", Redact(dbURL), err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", Redact(dbURL), err)
	}
	return pool, nil
}

// localCandidates lists the places a local server usually answers, as
// connection URLs to its maintenance database.
func localCandidates() []string {
	user := os.Getenv("PGUSER")
	if user == "" {
		// Debian's trust setup has a role named like the Unix user for root
		// and postgres; "postgres" is the role every cluster has.
		if u := os.Getenv("USER"); u != "" {
			user = u
		} else {
			user = "postgres"
		}
	}
	c := []string{"postgres://" + url.PathEscape(user) + "@127.0.0.1:5432/postgres?sslmode=disable"}
	if user != "postgres" {
		c = append(c, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	}
	for _, dir := range []string{"/var/run/postgresql", "/tmp"} {
		if _, err := os.Stat(dir + "/.s.PGSQL.5432"); err == nil {
			c = append(c, "postgres:///postgres?host="+dir+"&user="+url.QueryEscape(user))
			if user != "postgres" {
				c = append(c, "postgres:///postgres?host="+dir+"&user=postgres")
			}
		}
	}
	return c
}

// answers reports whether a server accepts a connection (and our role) there.
func answers(ctx context.Context, dbURL string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

// prepareDatabase drops name first when reset, then ensures it exists.
func prepareDatabase(ctx context.Context, serverURL, name string, reset bool) (string, error) {
	if reset {
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			return "", fmt.Errorf("connect to %s: %w", Redact(serverURL), err)
		}
		// WITH (FORCE) ends sessions a previous run left behind (PostgreSQL 13+).
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		conn.Close(ctx)
		if err != nil {
			return "", fmt.Errorf("drop database %s: %w", name, err)
		}
	}
	return ensureDatabase(ctx, serverURL, name)
}

// ensureDatabase creates name on the server behind maintURL if it is missing
// and returns a URL to it.
func ensureDatabase(ctx context.Context, maintURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, maintURL)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", Redact(maintURL), err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for database %s: %w", name, err)
	}
	if !exists {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		var pgErr *pgconn.PgError
		// Another process may have created it between the check and here.
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") {
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
	}
	u, err := url.Parse(maintURL)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", Redact(maintURL), err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Redact removes the password from a database URL so it can be logged.
func Redact(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil || u.Scheme == "" {
		return "(unparseable database URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// freePort reports whether nothing listens on the loopback port.
func freePort(port uint32) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// KeepSessionAlive makes the server probe a long-lived session's client
// (a leader's advisory-lock connection) after 10 s of silence, every 5 s,
// and drop it after 4 unanswered probes: the lock of a process whose host
// vanished is freed within about 30 s instead of the kernel's two hours.
// A process that is killed closes its socket, and the lock goes at once.
// Unix-socket sessions ignore these settings.
func KeepSessionAlive(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `SELECT set_config('tcp_keepalives_idle', '10', false),
		set_config('tcp_keepalives_interval', '5', false), set_config('tcp_keepalives_count', '4', false)`)
	if err != nil {
		return fmt.Errorf("set session keepalives: %w", err)
	}
	return nil
}
