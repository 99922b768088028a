// Package keys owns the registry of protected keys. A key is known only by
// its fingerprint (see package matcher); the plaintext never reaches the
// service.
package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/matcher"
)

// ErrDuplicate is returned when the organisation already has a key of that
// name or fingerprint.
var ErrDuplicate = errors.New("key already registered")

// Key is a registered key.
type Key struct {
	ID          int64
	OrgID       int64
	Name        string
	Fingerprint string
	Provider    string
	State       string
	CreatedAt   time.Time
}

// Store reads and writes keys.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Add registers a key by fingerprint.
func (s *Store) Add(ctx context.Context, orgID int64, name string, fp matcher.Fingerprint) (Key, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return Key{}, errors.New("key name is empty")
	}
	k := Key{OrgID: orgID, Name: name, Fingerprint: fp.String(), Provider: fp.Provider(), State: "active"}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO keys (org_id, name, fingerprint, provider) VALUES ($1, $2, $3, $4)
		RETURNING id, created_at`, orgID, k.Name, k.Fingerprint, k.Provider).Scan(&k.ID, &k.CreatedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Key{}, fmt.Errorf("key %q: %w", name, ErrDuplicate)
	}
	if err != nil {
		return Key{}, fmt.Errorf("register key %q: %w", name, err)
	}
	return k, nil
}

// Active returns every active key of every organisation: the matcher's input.
func (s *Store) Active(ctx context.Context) ([]Key, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, org_id, name, fingerprint, provider, state, created_at
		FROM keys WHERE state = 'active' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list active keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		if err := rows.Scan(&k.ID, &k.OrgID, &k.Name, &k.Fingerprint, &k.Provider, &k.State, &k.CreatedAt); err != nil {
			return nil, fmt.Errorf("scan key: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list active keys: %w", err)
	}
	return out, nil
}
