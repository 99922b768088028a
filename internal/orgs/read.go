package orgs

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DBTX is what the functions below need of a database handle: the pool, or
// the caller's transaction when they must run inside it. It has the shape
// of sqlc's generated DBTX, as keys.DBTX and audit.DBTX do.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Names returns the names of the organisations with those ids, in one
// query (what a list shows beside each row); ids of deleted organisations
// are absent from the map.
func Names(ctx context.Context, db DBTX, ids []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, `SELECT id, name FROM orgs WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read names of %d organisations: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("read names of %d organisations: %w", len(ids), err)
		}
		out[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read names of %d organisations: %w", len(ids), err)
	}
	return out, nil
}
