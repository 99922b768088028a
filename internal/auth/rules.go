package auth

import (
	"errors"
	"fmt"
)

// ErrForbidden wraps a refusal by one of the permission rules below; the
// text after "forbidden: " is safe to show.
var ErrForbidden = errors.New("forbidden")

// The owner role is only an owner's to give, change or take away. The
// rules live here, beside the roles, so every caller (API, pages, CLI,
// Slack) asks the same question and none can drift from the others. The
// actor is the role of whoever acts: a member's, or an API token's.

// MayInvite refuses a non-owner inviting someone as owner.
func MayInvite(actor, role Role) error {
	if role == RoleOwner && !actor.AtLeast(RoleOwner) {
		return fmt.Errorf("%w: only an owner can invite an owner", ErrForbidden)
	}
	return nil
}

// MaySetRole refuses a non-owner granting the owner role or changing an
// owner's role.
func MaySetRole(actor Role, target Membership, role Role) error {
	if (role == RoleOwner || target.Role == RoleOwner) && !actor.AtLeast(RoleOwner) {
		return fmt.Errorf("%w: only an owner can grant or change the owner role", ErrForbidden)
	}
	return nil
}

// MayRemove refuses a non-owner removing an owner.
func MayRemove(actor Role, target Membership) error {
	if target.Role == RoleOwner && !actor.AtLeast(RoleOwner) {
		return fmt.Errorf("%w: only an owner can remove an owner", ErrForbidden)
	}
	return nil
}
