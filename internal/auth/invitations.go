package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/orgs"
)

// Invitation invites an email address into an organisation with a role.
type Invitation struct {
	ID         int64      `json:"id"`
	OrgID      int64      `json:"org_id"`
	OrgName    string     `json:"org_name"`
	Email      string     `json:"email"`
	Role       Role       `json:"role"`
	InvitedBy  int64      `json:"invited_by,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	AcceptedAt *time.Time `json:"accepted_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// selectInvitation reads invitations with scanInvitation; withOrgNames
// adds the organisation names, which package orgs owns.
const selectInvitation = `SELECT i.id, i.org_id, i.email, i.role, coalesce(i.invited_by, 0), i.created_at, i.expires_at, i.accepted_at, i.revoked_at
	FROM invitations i`

func scanInvitation(row pgx.Row) (Invitation, error) {
	var i Invitation
	err := row.Scan(&i.ID, &i.OrgID, &i.Email, &i.Role, &i.InvitedBy, &i.CreatedAt, &i.ExpiresAt, &i.AcceptedAt, &i.RevokedAt)
	return i, err
}

// withOrgNames fills in each invitation's organisation name, in one query
// for the whole list.
func withOrgNames(ctx context.Context, db orgs.DBTX, list []Invitation) error {
	ids := make([]int64, 0, len(list))
	for _, inv := range list {
		ids = append(ids, inv.OrgID)
	}
	names, err := orgs.Names(ctx, db, ids)
	if err != nil {
		return err
	}
	for i := range list {
		list[i].OrgName = names[list[i].OrgID]
	}
	return nil
}

// Invite creates an invitation and returns its token (for the link), shown
// only now. Only an owner may invite an owner; the caller checks that.
func (s *Store) Invite(ctx context.Context, orgID, invitedBy int64, email string, role Role) (string, Invitation, error) {
	email, err := NormaliseEmail(email)
	if err != nil {
		return "", Invitation{}, err
	}
	if !role.AtLeast(RoleViewer) {
		return "", Invitation{}, fmt.Errorf("%w: unknown role %q", ErrInvalid, role)
	}
	token, hash := newToken("lwi_")
	var id int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO invitations (org_id, email, role, token_hash, invited_by, expires_at)
			VALUES ($1, $2, $3, $4, $5, now() + $6::interval) RETURNING id`,
			orgID, email, role, hash, nullID(invitedBy), s.cfg.InvitationTTL).Scan(&id)
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, orgID, "invitation.create", "invitation", id, map[string]any{"email": email, "role": role})
	})
	if err != nil {
		return "", Invitation{}, fmt.Errorf("invite %s: %w", email, err)
	}
	inv, err := scanInvitation(s.pool.QueryRow(ctx, selectInvitation+` WHERE i.id = $1`, id))
	if err == nil {
		one := []Invitation{inv}
		err = withOrgNames(ctx, s.pool, one)
		inv = one[0]
	}
	if err != nil {
		return "", Invitation{}, fmt.Errorf("read invitation %d: %w", id, err)
	}
	return token, inv, nil
}

// Invitations lists the organisation's invitations, newest first, paged
// like Tokens.
func (s *Store) Invitations(ctx context.Context, orgID int64, p Page) ([]Invitation, error) {
	rows, err := s.pool.Query(ctx, selectInvitation+` WHERE i.org_id = $1 AND ($2 = 0 OR i.id < $2) ORDER BY i.id DESC LIMIT $3`, orgID, p.Cursor, p.limit())
	if err != nil {
		return nil, fmt.Errorf("list invitations of organisation %d: %w", orgID, err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invitation, error) { return scanInvitation(r) })
	if err == nil {
		err = withOrgNames(ctx, s.pool, list)
	}
	if err != nil {
		return nil, fmt.Errorf("list invitations of organisation %d: %w", orgID, err)
	}
	return list, nil
}

// RevokeInvitation withdraws a pending invitation of the organisation.
func (s *Store) RevokeInvitation(ctx context.Context, orgID, id int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE invitations SET revoked_at = coalesce(revoked_at, now()) WHERE org_id = $1 AND id = $2`, orgID, id)
		if err != nil {
			return fmt.Errorf("revoke invitation %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("invitation %d: %w", id, ErrNotFound)
		}
		return s.auditTx(ctx, tx, orgID, "invitation.revoke", "invitation", id, nil)
	})
}

// AcceptInvitation consumes an invitation token. With userID 0 it signs up
// the invited address as a new user (with password, if not empty), and
// refuses with ErrSignInFirst if a user with that address exists; otherwise
// the signed-in user must have the invited address. It returns the user and
// the new (or existing) membership.
func (s *Store) AcceptInvitation(ctx context.Context, token string, userID int64, password string) (User, Membership, error) {
	if userID == 0 && password != "" {
		if err := CheckPasswordPolicy(password); err != nil {
			return User{}, Membership{}, err
		}
	}
	var u User
	var m Membership
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var inv Invitation
		err := tx.QueryRow(ctx, `
			UPDATE invitations SET accepted_at = now()
			WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
			RETURNING id, org_id, email, role`, hashToken(token)).Scan(&inv.ID, &inv.OrgID, &inv.Email, &inv.Role)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("invitation: %w", ErrExpired)
		}
		if err != nil {
			return fmt.Errorf("accept invitation: %w", err)
		}
		if userID == 0 {
			var created bool
			u, created, err = s.ensureUser(ctx, tx, inv.Email)
			if err != nil {
				return err
			}
			// Whoever holds the link could otherwise sign in as an existing
			// account (the inviting admin sees the link): an existing user
			// must sign in first and accept as themselves.
			if !created {
				return ErrSignInFirst
			}
			if password != "" {
				h, err := HashPassword(password, s.cfg.Argon)
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, u.ID, h); err != nil {
					return fmt.Errorf("set password: %w", err)
				}
				u.HasPassword = true
			}
		} else {
			u, err = scanUser(tx.QueryRow(ctx, selectUser+` WHERE id = $1`, userID))
			if err != nil {
				return fmt.Errorf("read user %d: %w", userID, err)
			}
			if u.Email != inv.Email {
				return fmt.Errorf("%w: this invitation is for another email address", ErrInvalid)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE invitations SET accepted_by = $2 WHERE id = $1`, inv.ID, u.ID); err != nil {
			return fmt.Errorf("accept invitation: %w", err)
		}
		m, _, err = s.addMember(ctx, tx, inv.OrgID, u.ID, inv.Role)
		return err
	})
	return u, m, err
}
