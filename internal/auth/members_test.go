package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestMemberByEmail finds a member of one organisation by email, whatever
// its case, and nobody outside it.
func TestMemberByEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewStore(pool, auth.Config{Argon: cheap})
	acme, _, err := orgs.NewStore(pool).Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	globex, _, err := orgs.NewStore(pool).Create(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := s.EnsureUser(ctx, "alice@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMember(ctx, acme.ID, u.ID, auth.RoleResponder); err != nil {
		t.Fatal(err)
	}
	m, err := s.MemberByEmail(ctx, acme.ID, "Alice@ACME.example")
	if err != nil {
		t.Fatal(err)
	}
	if m.UserID != u.ID || m.Role != auth.RoleResponder || m.Email != "alice@acme.example" || m.OrgName != "acme" {
		t.Fatalf("MemberByEmail = %+v", m)
	}
	for _, tc := range []struct {
		name  string
		org   int64
		email string
	}{
		{"another organisation", globex.ID, "alice@acme.example"},
		{"unknown email", acme.ID, "bob@acme.example"},
		{"no email", acme.ID, ""},
	} {
		if _, err := s.MemberByEmail(ctx, tc.org, tc.email); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", tc.name, err)
		}
	}
}
