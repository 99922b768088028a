package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SessionInfo is one live session as its user sees it on the account
// page: where and when, to spot a browser that should not be signed in.
// Never the token or its CSRF value.
type SessionInfo struct {
	ID         int64     `json:"id"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Sessions lists the user's live sessions, most recently used first.
func (s *Store) Sessions(ctx context.Context, userID int64) ([]SessionInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, ip, user_agent, created_at, last_seen_at, expires_at
		FROM sessions WHERE user_id = $1 AND expires_at > now() ORDER BY last_seen_at DESC, id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of user %d: %w", userID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SessionInfo, error) {
		var si SessionInfo
		return si, r.Scan(&si.ID, &si.IP, &si.UserAgent, &si.CreatedAt, &si.LastSeenAt, &si.ExpiresAt)
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions of user %d: %w", userID, err)
	}
	return out, nil
}

// TokensCreatedBy lists the organisation's tokens the user created,
// newest first, revoked ones included: each borrows its creator's rights,
// so the creator is who should review them.
func (s *Store) TokensCreatedBy(ctx context.Context, orgID, userID int64) ([]Token, error) {
	rows, err := s.pool.Query(ctx, selectToken+` WHERE t.org_id = $1 AND t.created_by = $2 ORDER BY t.id DESC LIMIT 200`, orgID, userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) { return scanToken(r) })
}
