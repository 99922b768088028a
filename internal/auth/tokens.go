package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/audit"
)

// Token scopes: read tokens act as a viewer, write tokens as an admin, but
// never above the current role of the member who created them.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// TokenPrefix starts every API token, so scanners (ours included) can tell
// one apart.
const TokenPrefix = "lwt_"

// Token is an API token of an organisation. The value itself is never stored.
type Token struct {
	ID        int64  `json:"id"`
	OrgID     int64  `json:"org_id"`
	Name      string `json:"name"`
	Scope     string `json:"scope"`
	Display   string `json:"display"` // the first characters, to tell tokens apart
	CreatedBy int64  `json:"created_by,omitempty"`
	// CreatedByEmail names the creator, so a token list shows whose rights
	// each token borrows; empty once the user is gone.
	CreatedByEmail string `json:"created_by_email"`
	// CreatorRole is the creator's current role in the organisation, read
	// with the token on every request (TokenByValue); empty elsewhere.
	CreatorRole Role       `json:"-"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
}

// ScopeRole returns the most a token's scope allows.
func (t Token) ScopeRole() Role {
	if t.Scope == ScopeWrite {
		return RoleAdmin
	}
	return RoleViewer
}

// Role returns the role a token acts with: its scope's role capped by its
// creator's current role, so a demotion takes effect on the creator's
// tokens at once. Without a creator role (not read, or no longer a member)
// it is empty, which grants nothing.
func (t Token) Role() Role {
	r := t.ScopeRole()
	if !t.CreatorRole.AtLeast(RoleViewer) {
		return ""
	}
	if !t.CreatorRole.AtLeast(r) {
		return t.CreatorRole
	}
	return r
}

// tokenColumns are read from api_tokens t left-joined to users u.
const tokenColumns = `t.id, t.org_id, t.name, t.scope, t.display, coalesce(t.created_by, 0), coalesce(u.email, ''), t.created_at, t.last_used_at, t.revoked_at`

const selectToken = `SELECT ` + tokenColumns + ` FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by`

func scanToken(row pgx.Row, extra ...any) (Token, error) {
	var t Token
	err := row.Scan(append([]any{&t.ID, &t.OrgID, &t.Name, &t.Scope, &t.Display, &t.CreatedBy, &t.CreatedByEmail, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt}, extra...)...)
	return t, err
}

// CreateToken creates an API token and returns its value, shown only now.
// Every token is bound to the member who creates it: it never acts above
// their current role and is revoked when they leave the organisation.
func (s *Store) CreateToken(ctx context.Context, a audit.Actor, orgID, createdBy int64, name, scope string) (string, Token, error) {
	if createdBy <= 0 {
		return "", Token{}, fmt.Errorf("%w: an API token needs the member who creates it", ErrInvalid)
	}
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
		// Only a member can lend a token their rights; lock the membership
		// so a concurrent removal cannot slip between check and insert.
		if err := tx.QueryRow(ctx, `SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2 FOR SHARE`, orgID, createdBy).Scan(new(int)); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%w: user %d is not a member of organisation %d", ErrInvalid, createdBy, orgID)
			}
			return err
		}
		var id int64
		if err := tx.QueryRow(ctx, `
			INSERT INTO api_tokens (org_id, name, scope, token_hash, display, created_by) VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING id`, orgID, name, scope, hash, value[:len(TokenPrefix)+6], createdBy).Scan(&id); err != nil {
			return err
		}
		var err error
		t, err = scanToken(tx.QueryRow(ctx, selectToken+` WHERE t.id = $1`, id))
		if err != nil {
			return err
		}
		return auditTx(ctx, tx, a, orgID, "token.create", "token", t.ID, map[string]any{"name": t.Name, "scope": t.Scope})
	})
	if err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	return value, t, nil
}

// TokenByValue returns the live token with that value, with its creator's
// current role (Token.Role), and records its use. A token whose creator is
// no longer a member of its organisation is not found: removing a member
// revokes their tokens, and this check holds even for one that was missed.
func (s *Store) TokenByValue(ctx context.Context, value string) (Token, error) {
	var creatorRole Role
	t, err := scanToken(s.pool.QueryRow(ctx, `
		WITH live AS (
			UPDATE api_tokens t SET last_used_at = now()
			FROM memberships m
			WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND m.org_id = t.org_id AND m.user_id = t.created_by
			RETURNING t.*, m.role AS creator_role
		)
		SELECT `+tokenColumns+`, t.creator_role FROM live t LEFT JOIN users u ON u.id = t.created_by`, hashToken(value)), &creatorRole)
	t.CreatorRole = creatorRole
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
	rows, err := s.pool.Query(ctx, selectToken+` WHERE t.org_id = $1 AND ($2 = 0 OR t.id < $2) ORDER BY t.id DESC LIMIT $3`, orgID, p.Cursor, p.limit())
	if err != nil {
		return nil, fmt.Errorf("list tokens of organisation %d: %w", orgID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) { return scanToken(r) })
}

// RevokeToken revokes the organisation's token; revoking twice is a no-op.
func (s *Store) RevokeToken(ctx context.Context, a audit.Actor, orgID, tokenID int64) (Token, error) {
	var t Token
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE org_id = $1 AND id = $2 RETURNING id`,
			orgID, tokenID).Scan(new(int64)); err != nil {
			return err
		}
		var err error
		t, err = scanToken(tx.QueryRow(ctx, selectToken+` WHERE t.id = $1`, tokenID))
		if err != nil {
			return err
		}
		return auditTx(ctx, tx, a, orgID, "token.revoke", "token", t.ID, map[string]any{"name": t.Name})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, fmt.Errorf("token %d: %w", tokenID, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %d: %w", tokenID, err)
	}
	return t, nil
}
