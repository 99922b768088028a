// Package audit owns the append-only audit log: who changed what, in which
// organisation, on which object, when, and from which IP and user agent.
// Rows are only ever inserted; a database trigger refuses updates and deletes.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Entry is one audited change. Details must never hold secrets.
type Entry struct {
	ID         int64          `json:"id"`
	OrgID      int64          `json:"org_id"`
	ActorUser  int64          `json:"actor_user_id,omitempty"`
	ActorToken int64          `json:"actor_token_id,omitempty"`
	Actor      string         `json:"actor"` // email, or "token:NAME"
	Action     string         `json:"action"`
	ObjectType string         `json:"object_type"`
	ObjectID   string         `json:"object_id"`
	Details    map[string]any `json:"details,omitempty"`
	IP         string         `json:"ip"`
	UserAgent  string         `json:"user_agent"`
	CreatedAt  time.Time      `json:"created_at"`
}

// DBTX is what Write needs: a pool or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Write appends e. Pass a transaction to record the change atomically with it.
func Write(ctx context.Context, db DBTX, e Entry) error {
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	d, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("audit %s: encode details: %w", e.Action, err)
	}
	_, err = db.Exec(ctx, `
		INSERT INTO audit_log (org_id, actor_user, actor_token, actor, action, object_type, object_id, details, ip, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		nullID(e.OrgID), nullID(e.ActorUser), nullID(e.ActorToken), e.Actor, e.Action, e.ObjectType, e.ObjectID, d, e.IP, e.UserAgent)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// Store reads the audit log.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Write appends e outside any transaction.
func (s *Store) Write(ctx context.Context, e Entry) error { return Write(ctx, s.pool, e) }

// List returns up to limit entries of the organisation, newest first, older
// than the entry with id before (0: from the newest).
func (s *Store) List(ctx context.Context, orgID, before int64, limit int) ([]Entry, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, selectEntries+` WHERE org_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, orgID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit log of organisation %d: %w", orgID, err)
	}
	return pgx.CollectRows(rows, scanEntry)
}

// Export writes every entry of the organisation, oldest first, as JSON lines.
func (s *Store) Export(ctx context.Context, orgID int64, w io.Writer) error {
	rows, err := s.pool.Query(ctx, selectEntries+` WHERE org_id = $1 ORDER BY id`, orgID)
	if err != nil {
		return fmt.Errorf("export audit log of organisation %d: %w", orgID, err)
	}
	defer rows.Close()
	enc := json.NewEncoder(w)
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return err
		}
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("export audit log: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export audit log of organisation %d: %w", orgID, err)
	}
	return nil
}

const selectEntries = `SELECT id, coalesce(org_id, 0), coalesce(actor_user, 0), coalesce(actor_token, 0), actor, action,
	object_type, object_id, details, ip, user_agent, created_at FROM audit_log`

func scanEntry(r pgx.CollectableRow) (Entry, error) {
	var e Entry
	var d []byte
	err := r.Scan(&e.ID, &e.OrgID, &e.ActorUser, &e.ActorToken, &e.Actor, &e.Action, &e.ObjectType, &e.ObjectID, &d, &e.IP, &e.UserAgent, &e.CreatedAt)
	if err != nil {
		return Entry{}, fmt.Errorf("scan audit entry: %w", err)
	}
	if len(d) > 0 {
		if err := json.Unmarshal(d, &e.Details); err != nil {
			return Entry{}, fmt.Errorf("decode audit details: %w", err)
		}
	}
	if len(e.Details) == 0 {
		e.Details = nil
	}
	return e, nil
}
