package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/orgs"
)

// OrgOwner is what CreateOrgWithOwner did.
type OrgOwner struct {
	Org        orgs.Org
	OrgCreated bool
	Owner      Membership // the owner's membership: user id and email
	// LoginToken is a one-time sign-in token for the owner in Org, valid
	// for Config.LinkTTL; shown only now.
	LoginToken string
}

// CreateOrgWithOwner creates the organisation (or finds it), makes email
// its owner (creating the user without a password; an existing member is
// raised to owner) and mints a one-time sign-in link for them, all in one
// transaction with the audit entries of what changed (org.create,
// user.create, member.add or member.update, as made by actor). A failure
// at any step leaves nothing behind, so `leakwatch orgs create --owner`
// can simply be run again. Running it again changes nothing but mints a
// fresh link.
func (s *Store) CreateOrgWithOwner(ctx context.Context, orgStore *orgs.Store, actor audit.Entry, orgName, email string) (OrgOwner, error) {
	if actor.Actor == "" {
		return OrgOwner{}, errors.New("create organisation with owner: no actor to audit the change as")
	}
	email, err := NormaliseEmail(email)
	if err != nil {
		return OrgOwner{}, err
	}
	var out OrgOwner
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if out.Org, out.OrgCreated, err = orgStore.CreateTx(ctx, tx, actor, orgName); err != nil {
			return err
		}
		if out.Owner, err = s.EnsureOwnerTx(ctx, tx, actor, out.Org.ID, email); err != nil {
			return err
		}
		out.LoginToken, err = s.newLoginLink(ctx, tx, out.Owner.UserID, out.Org.ID)
		return err
	})
	if err != nil {
		return OrgOwner{}, fmt.Errorf("create organisation %q with owner: %w", orgName, err)
	}
	return out, nil
}

// EnsureOwnerTx makes the user with email (normalised) an owner of the
// organisation inside the caller's transaction: it creates the user if
// needed and adds the membership, or raises a lower role to owner. Each
// change is recorded in tx as made by actor; an existing owner changes
// nothing.
func (s *Store) EnsureOwnerTx(ctx context.Context, tx pgx.Tx, actor audit.Entry, orgID int64, email string) (Membership, error) {
	as := s.As(actor)
	u, created, err := s.ensureUser(ctx, tx, email)
	if err != nil {
		return Membership{}, err
	}
	if created {
		if err := as.auditTx(ctx, tx, orgID, "user.create", "user", u.ID, map[string]any{"email": u.Email}); err != nil {
			return Membership{}, err
		}
	}
	m, added, err := s.addMember(ctx, tx, orgID, u.ID, RoleOwner)
	if err != nil {
		return Membership{}, err
	}
	switch {
	case added:
		err = as.auditTx(ctx, tx, orgID, "member.add", "user", u.ID, map[string]any{"role": RoleOwner})
	case m.Role != RoleOwner:
		// Raising to owner needs no "another owner" check: nobody loses
		// ownership.
		from := m.Role
		if _, err := tx.Exec(ctx, `UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2`, orgID, u.ID, RoleOwner); err != nil {
			return Membership{}, fmt.Errorf("raise member to owner: %w", err)
		}
		m.Role = RoleOwner
		err = as.auditTx(ctx, tx, orgID, "member.update", "user", u.ID, map[string]any{"from": from, "to": RoleOwner})
	}
	if err != nil {
		return Membership{}, err
	}
	return m, nil
}
