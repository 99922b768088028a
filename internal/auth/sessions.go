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

// SignIn checks an email and password.
//
// Throttling, designed against both guessing and lockout:
//   - Each attempt is recorded before its password is checked, in a
//     transaction that holds a lock on the client's IP while it counts
//     that IP's recent failures and inserts the attempt. Parallel guesses
//     from one IP therefore queue on the lock and each sees the ones before
//     it: no burst gets more checks than the limits allow.
//   - The limits are MaxFailuresPerAccount per (account, IP) pair and
//     MaxFailuresPerIP per IP across accounts. There is deliberately no
//     account-wide limit across IPs: such a limit lets anyone lock an
//     account by failing a few times, and the real owner, signing in from
//     their own IP, would be refused with the right password. A guesser
//     spreading over many IPs still gets only a few argon2id checks per IP
//     and account per window against a 12-character minimum password.
//   - At most MaxConcurrentChecks argon2id checks (19 MiB each) run at
//     once; an attempt that cannot get a slot within CheckWait is refused
//     with ErrBusy, its attempt withdrawn, without touching the hash.
//
// An unknown email costs the same work as a wrong password. A success
// clears the pair's failures.
func (s *Store) SignIn(ctx context.Context, email, password, ip string) (User, error) {
	email, err := NormaliseEmail(email)
	if err != nil {
		return User{}, ErrInvalidCredentials
	}
	since := time.Now().Add(-s.cfg.ThrottleWindow)
	attemptID, err := s.recordAttempt(ctx, email, ip, since)
	if err != nil {
		return User{}, err
	}
	release, err := s.acquireCheck(ctx)
	if err != nil {
		// Not checked: the attempt does not count against the caller.
		if _, derr := s.pool.Exec(context.WithoutCancel(ctx), `DELETE FROM login_attempts WHERE id = $1`, attemptID); derr != nil {
			return User{}, fmt.Errorf("sign in: withdraw attempt: %w", derr)
		}
		return User{}, err
	}
	defer release()
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
	if ok {
		if _, err := s.pool.Exec(ctx, `
			WITH done AS (UPDATE login_attempts SET succeeded = true WHERE id = $1)
			DELETE FROM login_attempts WHERE email = $2 AND ip = $3 AND NOT succeeded AND id <> $1`, attemptID, email, ip); err != nil {
			return User{}, fmt.Errorf("sign in: record success: %w", err)
		}
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

// recordAttempt counts the recent failures of the (email, IP) pair and of
// the IP and, if both are under their limits, records this attempt as a
// failure (SignIn marks it a success after the check). The transaction
// lock on the IP makes count and insert one step for parallel attempts.
func (s *Store) recordAttempt(ctx context.Context, email, ip string, since time.Time) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('leakwatch.login_attempts.ip:' || $1, 0))`, ip); err != nil {
			return fmt.Errorf("lock attempts of %s: %w", ip, err)
		}
		var byPair, byIP int
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE email = $1), count(*)
			FROM login_attempts WHERE ip = $2 AND NOT succeeded AND attempted_at > $3`, email, ip, since).Scan(&byPair, &byIP); err != nil {
			return fmt.Errorf("count failures: %w", err)
		}
		if byPair >= s.cfg.MaxFailuresPerAccount || byIP >= s.cfg.MaxFailuresPerIP {
			return ErrThrottled
		}
		return tx.QueryRow(ctx, `INSERT INTO login_attempts (email, ip, succeeded) VALUES ($1, $2, false) RETURNING id`, email, ip).Scan(&id)
	})
	if errors.Is(err, ErrThrottled) {
		return 0, ErrThrottled
	}
	if err != nil {
		return 0, fmt.Errorf("sign in: record attempt: %w", err)
	}
	return id, nil
}

// acquireCheck takes one of the MaxConcurrentChecks password-check slots,
// waiting at most CheckWait.
func (s *Store) acquireCheck(ctx context.Context) (release func(), err error) {
	t := time.NewTimer(s.cfg.CheckWait)
	defer t.Stop()
	select {
	case s.checks <- struct{}{}:
		return func() { <-s.checks }, nil
	case <-t.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
	return s.newLoginLink(ctx, s.pool, userID, orgID)
}

func (s *Store) newLoginLink(ctx context.Context, db dbtx, userID, orgID int64) (string, error) {
	token, hash := newToken("lwl_")
	_, err := db.Exec(ctx, `INSERT INTO login_links (token_hash, user_id, org_id, expires_at) VALUES ($1, $2, $3, now() + $4::interval)`,
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
