package keys

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DBTX is what the read functions below need of a database handle: the
// pool, or the caller's transaction when the read must see what that
// transaction has done and hold its locks. It has the shape of sqlc's
// generated DBTX, as audit.DBTX and webhook.DBTX do, so a *pgxpool.Pool and
// a pgx.Tx both satisfy it.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Get returns the key with that id, whichever organisation it belongs to.
// It serves packages that hold a key id from their own rows (an
// incident's key); a request goes through Store.Key, which checks the
// organisation.
func Get(ctx context.Context, db DBTX, id int64) (Key, error) {
	k, err := scanKey(db.QueryRow(ctx, selectKeys+` WHERE k.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, fmt.Errorf("key %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("read key %d: %w", id, err)
	}
	return k, nil
}

// ByIDs returns the keys with those ids, in one query whatever their number
// (what a list of incidents shows of each one's key); ids of deleted keys
// are absent from the map.
func ByIDs(ctx context.Context, db DBTX, ids []int64) (map[int64]Key, error) {
	out := make(map[int64]Key, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, selectKeys+` WHERE k.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read %d keys: %w", len(ids), err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("read %d keys: %w", len(ids), err)
	}
	for _, k := range list {
		out[k.ID] = k
	}
	return out, nil
}

// KeysetVersion returns the current key-set version. Every change to keys
// bumps it in its own transaction, so what was scanned with an older
// version (crawler's content cache) may miss a key and is not trusted.
func KeysetVersion(ctx context.Context, db DBTX) (int64, error) {
	var v int64
	if err := db.QueryRow(ctx, `SELECT version FROM keyset_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read key-set version: %w", err)
	}
	return v, nil
}
