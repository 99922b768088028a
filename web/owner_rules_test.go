package web

import (
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestOwnerRules: only an owner gives, changes or takes away the owner role,
// for the API and the pages alike.
func TestOwnerRules(t *testing.T) {
	t.Parallel()
	owner := auth.Membership{Role: auth.RoleOwner}
	admin := auth.Membership{Role: auth.RoleAdmin}
	for _, tc := range []struct {
		name  string
		actor auth.Role
		check func(Member) error
		allow bool
	}{
		{"admin invites owner", auth.RoleAdmin, func(m Member) error { return m.mayInvite(auth.RoleOwner) }, false},
		{"admin invites admin", auth.RoleAdmin, func(m Member) error { return m.mayInvite(auth.RoleAdmin) }, true},
		{"owner invites owner", auth.RoleOwner, func(m Member) error { return m.mayInvite(auth.RoleOwner) }, true},
		{"admin makes an owner", auth.RoleAdmin, func(m Member) error { return m.maySetRole(admin, auth.RoleOwner) }, false},
		{"admin demotes an owner", auth.RoleAdmin, func(m Member) error { return m.maySetRole(owner, auth.RoleViewer) }, false},
		{"admin demotes an admin", auth.RoleAdmin, func(m Member) error { return m.maySetRole(admin, auth.RoleViewer) }, true},
		{"owner demotes an owner", auth.RoleOwner, func(m Member) error { return m.maySetRole(owner, auth.RoleAdmin) }, true},
		{"admin removes an owner", auth.RoleAdmin, func(m Member) error { return m.mayRemove(owner) }, false},
		{"admin removes an admin", auth.RoleAdmin, func(m Member) error { return m.mayRemove(admin) }, true},
		{"owner removes an owner", auth.RoleOwner, func(m Member) error { return m.mayRemove(owner) }, true},
	} {
		err := tc.check(Member{Role: tc.actor})
		if (err == nil) != tc.allow {
			t.Errorf("%s: err = %v, want allowed=%v", tc.name, err, tc.allow)
		}
	}
}
