package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Session is a signed-in browser.
type Session struct {
	ID        int64
	UserID    int64
	OrgID     int64 // the organisation being worked in; 0 if none
	CSRFToken string
	ExpiresAt time.Time
}

// SignIn checks an email and password. After too many recent failures for
// the account or the IP it refuses with ErrThrottled without checking. An
// unknown email costs the same work as a wrong password.
func (s *Store) SignIn(ctx context.Context, email, password, ip string) (User, error) {
	email, err := NormaliseEmail(email)
	if err != nil {
		return User{}, ErrInvalidCredentials
	}
	since := time.Now().Add(-s.cfg.ThrottleWindow)
	var byAccount, byIP int
	err = s.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE email = $1), count(*) FILTER (WHERE ip = $2)
		FROM login_attempts WHERE NOT succeeded AND attempted_at > $3 AND (email = $1 OR ip = $2)`,
		email, ip, since).Scan(&byAccount, &byIP)
	if err != nil {
		return User{}, fmt.Errorf("sign in: count failures: %w", err)
	}
	if byAccount >= s.cfg.MaxFailuresPerAccount || byIP >= s.cfg.MaxFailuresPerIP {
		return User{}, ErrThrottled
	}
	var u User
	var hash string
	err = s.pool.QueryRow(ctx, `SELECT id, email, name, password_hash <> '', created_at, password_hash FROM users WHERE email = $1`, email).
		Scan(&u.ID, &u.Email, &u.Name, &u.HasPassword, &u.CreatedAt, &hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("sign in: read user: %w", err)
	}
	ok := false
	if hash != "" {
		ok, err = VerifyPassword(password, hash)
		if err != nil {
			return User{}, fmt.Errorf("sign in: %w", err)
		}
	} else {
		_, _ = VerifyPassword(password, s.dummy)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO login_attempts (email, ip, succeeded) VALUES ($1, $2, $3)`, email, ip, ok); err != nil {
		return User{}, fmt.Errorf("sign in: record attempt: %w", err)
	}
	// Attempts older than the window no longer count: drop this account's
	// and this IP's, so the table stays bounded without a sweeper.
	if _, err := s.pool.Exec(ctx, `DELETE FROM login_attempts WHERE (email = $1 OR ip = $2) AND attempted_at < $3`, email, ip, since); err != nil {
		return User{}, fmt.Errorf("sign in: prune attempts: %w", err)
	}
	if !ok {
		return User{}, ErrInvalidCredentials
	}
	return u, nil
}

// NewSession starts a session for the user and returns its cookie value,
// shown only now. orgID 0 picks the user's first organisation, if any.
func (s *Store) NewSession(ctx context.Context, userID, orgID int64, ip, userAgent string) (string, Session, error) {
	if orgID == 0 {
		err := s.pool.QueryRow(ctx, `SELECT coalesce(min(org_id), 0) FROM memberships WHERE user_id = $1`, userID).Scan(&orgID)
		if err != nil {
			return "", Session{}, fmt.Errorf("new session: pick organisation: %w", err)
		}
	} else if _, err := s.Membership(ctx, orgID, userID); err != nil {
		return "", Session{}, err
	}
	// The user's expired sessions go when a new one starts.
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND expires_at < now()`, userID); err != nil {
		return "", Session{}, fmt.Errorf("new session: prune expired: %w", err)
	}
	token, hash := newToken("")
	csrf, _ := newToken("")
	sess := Session{UserID: userID, OrgID: orgID, CSRFToken: csrf}
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO sessions (token_hash, user_id, org_id, csrf_token, ip, user_agent, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval) RETURNING id, expires_at`,
		hash, userID, nullID(orgID), csrf, ip, userAgent, s.cfg.SessionTTL).Scan(&sess.ID, &sess.ExpiresAt)
	if err != nil {
		return "", Session{}, fmt.Errorf("new session for user %d: %w", userID, err)
	}
	return token, sess, nil
}

// SessionByToken returns the live session behind a cookie value.
func (s *Store) SessionByToken(ctx context.Context, token string) (Session, error) {
	var sess Session
	err := s.pool.QueryRow(ctx, `
		UPDATE sessions SET last_seen_at = now()
		WHERE token_hash = $1 AND expires_at > now()
		RETURNING id, user_id, coalesce(org_id, 0), csrf_token, expires_at`, hashToken(token)).
		Scan(&sess.ID, &sess.UserID, &sess.OrgID, &sess.CSRFToken, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	return sess, nil
}

// SwitchOrg makes orgID the session's organisation; the user must be a
// member of it.
func (s *Store) SwitchOrg(ctx context.Context, sess Session, orgID int64) (Membership, error) {
	m, err := s.Membership(ctx, orgID, sess.UserID)
	if err != nil {
		return Membership{}, err
	}
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET org_id = $2 WHERE id = $1`, sess.ID, orgID); err != nil {
		return Membership{}, fmt.Errorf("switch organisation: %w", err)
	}
	return m, nil
}

// EndSession signs one session out.
func (s *Store) EndSession(ctx context.Context, sessionID int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, sessionID); err != nil {
		return fmt.Errorf("end session %d: %w", sessionID, err)
	}
	return nil
}

// EndAllSessions signs the user out everywhere and returns how many sessions
// ended.
func (s *Store) EndAllSessions(ctx context.Context, userID int64) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
	if err != nil {
		return 0, fmt.Errorf("end sessions of user %d: %w", userID, err)
	}
	return tag.RowsAffected(), nil
}

// NewLoginLink returns a one-time sign-in token for the user (to put in a
// link), valid for Config.LinkTTL. orgID, if not 0, is the organisation the
// session opens in.
func (s *Store) NewLoginLink(ctx context.Context, userID, orgID int64) (string, error) {
	token, hash := newToken("lwl_")
	_, err := s.pool.Exec(ctx, `INSERT INTO login_links (token_hash, user_id, org_id, expires_at) VALUES ($1, $2, $3, now() + $4::interval)`,
		hash, userID, nullID(orgID), s.cfg.LinkTTL)
	if err != nil {
		return "", fmt.Errorf("new sign-in link for user %d: %w", userID, err)
	}
	return token, nil
}

// UseLoginLink consumes a sign-in token and returns whom it signs in.
func (s *Store) UseLoginLink(ctx context.Context, token string) (userID, orgID int64, err error) {
	err = s.pool.QueryRow(ctx, `
		UPDATE login_links SET used_at = now()
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
		RETURNING user_id, coalesce(org_id, 0)`, hashToken(token)).Scan(&userID, &orgID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, fmt.Errorf("sign-in link: %w", ErrExpired)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("use sign-in link: %w", err)
	}
	return userID, orgID, nil
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}
