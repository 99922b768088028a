package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Token scopes: read tokens act as a viewer, write tokens as an admin.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// TokenPrefix starts every API token, so scanners (ours included) can tell
// one apart.
const TokenPrefix = "lwt_"

// Token is an API token of an organisation. The value itself is never stored.
type Token struct {
	ID         int64      `json:"id"`
	OrgID      int64      `json:"org_id"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`
	Display    string     `json:"display"` // the first characters, to tell tokens apart
	CreatedBy  int64      `json:"created_by,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Role returns the role a token acts with.
func (t Token) Role() Role {
	if t.Scope == ScopeWrite {
		return RoleAdmin
	}
	return RoleViewer
}

const selectToken = `SELECT id, org_id, name, scope, display, coalesce(created_by, 0), created_at, last_used_at, revoked_at FROM api_tokens`

func scanToken(row pgx.Row) (Token, error) {
	var t Token
	err := row.Scan(&t.ID, &t.OrgID, &t.Name, &t.Scope, &t.Display, &t.CreatedBy, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
	return t, err
}

// CreateToken creates an API token and returns its value, shown only now.
func (s *Store) CreateToken(ctx context.Context, orgID, createdBy int64, name, scope string) (string, Token, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", Token{}, fmt.Errorf("%w: token name must have 1 to 200 characters", ErrInvalid)
	}
	if scope != ScopeRead && scope != ScopeWrite {
		return "", Token{}, fmt.Errorf("%w: scope must be read or write", ErrInvalid)
	}
	value, hash := newToken(TokenPrefix)
	var t Token
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRow(ctx, `
			INSERT INTO api_tokens (org_id, name, scope, token_hash, display, created_by) VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING id, org_id, name, scope, display, coalesce(created_by, 0), created_at, last_used_at, revoked_at`,
			orgID, name, scope, hash, value[:len(TokenPrefix)+6], nullID(createdBy)))
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, orgID, "token.create", "token", t.ID, map[string]any{"name": t.Name, "scope": t.Scope})
	})
	if err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	return value, t, nil
}

// TokenByValue returns the live token with that value and records its use.
func (s *Store) TokenByValue(ctx context.Context, value string) (Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `
		UPDATE api_tokens SET last_used_at = now() WHERE token_hash = $1 AND revoked_at IS NULL
		RETURNING id, org_id, name, scope, display, coalesce(created_by, 0), created_at, last_used_at, revoked_at`, hashToken(value)))
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("read token: %w", err)
	}
	return t, nil
}

// Tokens lists the organisation's tokens, newest first, revoked ones
// included: all of them with a zero Page, else Page.Limit older than the
// token with id Page.Cursor (0: from the newest).
func (s *Store) Tokens(ctx context.Context, orgID int64, p Page) ([]Token, error) {
	rows, err := s.pool.Query(ctx, selectToken+` WHERE org_id = $1 AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3`, orgID, p.Cursor, p.limit())
	if err != nil {
		return nil, fmt.Errorf("list tokens of organisation %d: %w", orgID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) { return scanToken(r) })
}

// RevokeToken revokes the organisation's token; revoking twice is a no-op.
func (s *Store) RevokeToken(ctx context.Context, orgID, tokenID int64) (Token, error) {
	var t Token
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRow(ctx, `
			UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE org_id = $1 AND id = $2
			RETURNING id, org_id, name, scope, display, coalesce(created_by, 0), created_at, last_used_at, revoked_at`, orgID, tokenID))
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, orgID, "token.revoke", "token", t.ID, map[string]any{"name": t.Name})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, fmt.Errorf("token %d: %w", tokenID, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %d: %w", tokenID, err)
	}
	return t, nil
}
