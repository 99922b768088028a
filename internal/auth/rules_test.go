package auth_test

import (
	"errors"
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestOwnerRules: only an owner gives, changes or takes away the owner
// role; every other change is left to the role checks of the caller.
func TestOwnerRules(t *testing.T) {
	t.Parallel()
	member := func(r auth.Role) auth.Membership { return auth.Membership{Role: r} }
	for _, tc := range []struct {
		name  string
		err   error
		allow bool
	}{
		{"admin invites owner", auth.MayInvite(auth.RoleAdmin, auth.RoleOwner), false},
		{"admin invites admin", auth.MayInvite(auth.RoleAdmin, auth.RoleAdmin), true},
		{"responder invites viewer", auth.MayInvite(auth.RoleResponder, auth.RoleViewer), true},
		{"owner invites owner", auth.MayInvite(auth.RoleOwner, auth.RoleOwner), true},
		{"unknown role invites owner", auth.MayInvite("", auth.RoleOwner), false},
		{"admin makes an owner", auth.MaySetRole(auth.RoleAdmin, member(auth.RoleAdmin), auth.RoleOwner), false},
		{"admin demotes an owner", auth.MaySetRole(auth.RoleAdmin, member(auth.RoleOwner), auth.RoleViewer), false},
		{"admin keeps an owner an owner", auth.MaySetRole(auth.RoleAdmin, member(auth.RoleOwner), auth.RoleOwner), false},
		{"admin demotes an admin", auth.MaySetRole(auth.RoleAdmin, member(auth.RoleAdmin), auth.RoleViewer), true},
		{"owner demotes an owner", auth.MaySetRole(auth.RoleOwner, member(auth.RoleOwner), auth.RoleAdmin), true},
		{"owner makes an owner", auth.MaySetRole(auth.RoleOwner, member(auth.RoleViewer), auth.RoleOwner), true},
		{"admin removes an owner", auth.MayRemove(auth.RoleAdmin, member(auth.RoleOwner)), false},
		{"admin removes an admin", auth.MayRemove(auth.RoleAdmin, member(auth.RoleAdmin)), true},
		{"owner removes an owner", auth.MayRemove(auth.RoleOwner, member(auth.RoleOwner)), true},
	} {
		if (tc.err == nil) != tc.allow {
			t.Errorf("%s: err = %v, want allowed=%v", tc.name, tc.err, tc.allow)
		}
		if tc.err != nil && !errors.Is(tc.err, auth.ErrForbidden) {
			t.Errorf("%s: err = %v, want it to wrap ErrForbidden", tc.name, tc.err)
		}
	}
}
