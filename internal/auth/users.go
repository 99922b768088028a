package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// User is a person who signs in.
type User struct {
	ID          int64     `json:"id"`
	Email       string    `json:"email"`
	Name        string    `json:"name"`
	HasPassword bool      `json:"has_password"`
	CreatedAt   time.Time `json:"created_at"`
}

// Membership is a user's role in an organisation.
type Membership struct {
	OrgID     int64     `json:"org_id"`
	OrgName   string    `json:"org_name"`
	UserID    int64     `json:"user_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

const selectUser = `SELECT id, email, name, password_hash <> '', created_at FROM users`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.HasPassword, &u.CreatedAt)
	return u, err
}

// EnsureUser returns the user with that email, creating it (without a
// password) if needed. created reports which happened.
func (s *Store) EnsureUser(ctx context.Context, email string) (u User, created bool, err error) {
	email, err = NormaliseEmail(email)
	if err != nil {
		return User{}, false, err
	}
	return s.ensureUser(ctx, s.pool, email)
}

func (s *Store) ensureUser(ctx context.Context, db dbtx, email string) (User, bool, error) {
	u, err := scanUser(db.QueryRow(ctx, `
		INSERT INTO users (email) VALUES ($1) ON CONFLICT (email) DO NOTHING
		RETURNING id, email, name, password_hash <> '', created_at`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		u, err = scanUser(db.QueryRow(ctx, selectUser+` WHERE email = $1`, email))
		if err != nil {
			return User{}, false, fmt.Errorf("read user: %w", err)
		}
		return u, false, nil
	}
	if err != nil {
		return User{}, false, fmt.Errorf("create user: %w", err)
	}
	return u, true, nil
}

// UserByEmail returns the user with that email.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	u, err := scanUser(s.pool.QueryRow(ctx, selectUser+` WHERE email = $1`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("user: %w", ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user: %w", err)
	}
	return u, nil
}

// UserByID returns the user with that id.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, selectUser+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user %d: %w", id, err)
	}
	return u, nil
}

// SetPassword sets the user's password after checking the policy.
func (s *Store) SetPassword(ctx context.Context, userID int64, pw string) error {
	if err := CheckPasswordPolicy(pw); err != nil {
		return err
	}
	h, err := HashPassword(pw, s.cfg.Argon)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, userID, h)
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", userID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %d: %w", userID, ErrNotFound)
	}
	return nil
}

// AddMember gives the user a role in the organisation. If the user is
// already a member, the existing membership is returned unchanged and
// created is false.
func (s *Store) AddMember(ctx context.Context, orgID, userID int64, role Role) (m Membership, created bool, err error) {
	return s.addMember(ctx, s.pool, orgID, userID, role)
}

func (s *Store) addMember(ctx context.Context, db dbtx, orgID, userID int64, role Role) (Membership, bool, error) {
	if role.AtLeast(RoleViewer) == false {
		return Membership{}, false, fmt.Errorf("%w: unknown role %q", ErrInvalid, role)
	}
	tag, err := db.Exec(ctx, `INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, orgID, userID, role)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return Membership{}, false, fmt.Errorf("organisation or user: %w", ErrNotFound)
	}
	if err != nil {
		return Membership{}, false, fmt.Errorf("add member: %w", err)
	}
	m, err := membership(ctx, db, orgID, userID)
	return m, tag.RowsAffected() == 1, err
}

// selectMembership reads memberships with their organisation's and user's
// names.
//
// read-only join: Memberships lists a user's organisations in the order of
// their names, in the database's collation, so the names must be in the
// query.
const selectMembership = `SELECT m.org_id, o.name, m.user_id, u.email, u.name, m.role, m.created_at
	FROM memberships m JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id`

func scanMembership(row pgx.Row) (Membership, error) {
	var m Membership
	err := row.Scan(&m.OrgID, &m.OrgName, &m.UserID, &m.Email, &m.Name, &m.Role, &m.CreatedAt)
	return m, err
}

func membership(ctx context.Context, db dbtx, orgID, userID int64) (Membership, error) {
	m, err := scanMembership(db.QueryRow(ctx, selectMembership+` WHERE m.org_id = $1 AND m.user_id = $2`, orgID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Membership{}, fmt.Errorf("membership: %w", ErrNotFound)
	}
	if err != nil {
		return Membership{}, fmt.Errorf("read membership: %w", err)
	}
	return m, nil
}

// Membership returns the user's membership of the organisation.
func (s *Store) Membership(ctx context.Context, orgID, userID int64) (Membership, error) {
	return membership(ctx, s.pool, orgID, userID)
}

// Memberships lists the organisations the user belongs to, by name.
func (s *Store) Memberships(ctx context.Context, userID int64) ([]Membership, error) {
	rows, err := s.pool.Query(ctx, selectMembership+` WHERE m.user_id = $1 ORDER BY o.name`, userID)
	if err != nil {
		return nil, fmt.Errorf("list memberships of user %d: %w", userID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Membership, error) { return scanMembership(r) })
}

// MembersPage lists the organisation's members in user id order: Page.Limit
// of them after the user with id Page.Cursor.
func (s *Store) MembersPage(ctx context.Context, orgID int64, p Page) ([]Membership, error) {
	rows, err := s.pool.Query(ctx, selectMembership+` WHERE m.org_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3`, orgID, p.Cursor, p.limit())
	if err != nil {
		return nil, fmt.Errorf("list members of organisation %d: %w", orgID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Membership, error) { return scanMembership(r) })
}

// Members lists all the organisation's members by email.
func (s *Store) Members(ctx context.Context, orgID int64) ([]Membership, error) {
	rows, err := s.pool.Query(ctx, selectMembership+` WHERE m.org_id = $1 ORDER BY u.email`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list members of organisation %d: %w", orgID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Membership, error) { return scanMembership(r) })
}

// SetRole changes a member's role. The last owner cannot be demoted.
func (s *Store) SetRole(ctx context.Context, orgID, userID int64, role Role) (Membership, error) {
	if !role.AtLeast(RoleViewer) {
		return Membership{}, fmt.Errorf("%w: unknown role %q", ErrInvalid, role)
	}
	var m Membership
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := lockMembership(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		if cur == RoleOwner && role != RoleOwner {
			if err := requireAnotherOwner(ctx, tx, orgID, userID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2`, orgID, userID, role); err != nil {
			return fmt.Errorf("set role: %w", err)
		}
		if err := s.auditTx(ctx, tx, orgID, "member.update", "user", userID, map[string]any{"from": cur, "to": role}); err != nil {
			return err
		}
		m, err = membership(ctx, tx, orgID, userID)
		return err
	})
	return m, err
}

// RemoveMember removes the user from the organisation, revokes the API
// tokens they created there and ends their sessions' work there. The last owner cannot be removed.
func (s *Store) RemoveMember(ctx context.Context, orgID, userID int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := lockMembership(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		if cur == RoleOwner {
			if err := requireAnotherOwner(ctx, tx, orgID, userID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM memberships WHERE org_id = $1 AND user_id = $2`, orgID, userID); err != nil {
			return fmt.Errorf("remove member: %w", err)
		}
		// The API tokens they created lent them their rights: revoke them
		// in the same transaction, so none outlives the membership.
		tag, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE org_id = $1 AND created_by = $2 AND revoked_at IS NULL`, orgID, userID)
		if err != nil {
			return fmt.Errorf("revoke tokens of removed member: %w", err)
		}
		if err := s.auditTx(ctx, tx, orgID, "member.remove", "user", userID, map[string]any{"role": cur, "tokens_revoked": tag.RowsAffected()}); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE sessions SET org_id = NULL WHERE org_id = $1 AND user_id = $2`, orgID, userID)
		return err
	})
}

func lockMembership(ctx context.Context, tx pgx.Tx, orgID, userID int64) (Role, error) {
	// Lock every owner row of the org so two concurrent demotions cannot
	// both see "another owner" and leave none.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM memberships WHERE org_id = $1 AND role = 'owner' FOR UPDATE`, orgID); err != nil {
		return "", fmt.Errorf("lock owners: %w", err)
	}
	var r Role
	err := tx.QueryRow(ctx, `SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2 FOR UPDATE`, orgID, userID).Scan(&r)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("membership: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read membership: %w", err)
	}
	return r, nil
}

func requireAnotherOwner(ctx context.Context, tx pgx.Tx, orgID, userID int64) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'owner' AND user_id <> $2`, orgID, userID).Scan(&n); err != nil {
		return fmt.Errorf("count owners: %w", err)
	}
	if n == 0 {
		return ErrLastOwner
	}
	return nil
}

// dbtx is a pool or a transaction.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
