package auth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

var cheap = auth.ArgonParams{Memory: 64, Time: 1, Threads: 1}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := auth.HashPassword("correct horse battery staple", auth.ArgonDefault)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "horse") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := auth.HashPassword("correct horse battery staple", auth.ArgonDefault)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"Correct horse battery staple", false},
		{"", false},
	} {
		ok, err := auth.VerifyPassword(tc.pw, h)
		if err != nil || ok != tc.want {
			t.Errorf("verify %q = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=16$m=1,t=1,p=1$AA$AA", "plaintext"} {
		if _, err := auth.VerifyPassword("x", bad); err == nil {
			t.Errorf("verify against %q: no error", bad)
		}
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role, min auth.Role
		want      bool
	}{
		{auth.RoleOwner, auth.RoleAdmin, true},
		{auth.RoleAdmin, auth.RoleAdmin, true},
		{auth.RoleResponder, auth.RoleAdmin, false},
		{auth.RoleViewer, auth.RoleResponder, false},
		{auth.RoleResponder, auth.RoleViewer, true},
		{"", auth.RoleViewer, false},
		{"root", auth.RoleViewer, false},
	} {
		if got := tc.role.AtLeast(tc.min); got != tc.want {
			t.Errorf("%q.AtLeast(%q) = %v", tc.role, tc.min, got)
		}
	}
	if r, err := auth.ParseRole(" Admin "); err != nil || r != auth.RoleAdmin {
		t.Errorf("ParseRole = %q, %v", r, err)
	}
	if _, err := auth.ParseRole("superuser"); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("ParseRole(superuser) = %v", err)
	}
}

func TestSignInThrottlePerIPAndSessionExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewStore(pool, auth.Config{Argon: cheap, MaxFailuresPerIP: 3})
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	u, created, err := s.EnsureUser(ctx, audit.System, "Alice@Example.com")
	if err != nil || !created || u.Email != "alice@example.com" {
		t.Fatalf("EnsureUser = %+v %v %v", u, created, err)
	}
	if err := s.SetPassword(ctx, audit.System, u.ID, "short"); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("short password accepted: %v", err)
	}
	if err := s.SetPassword(ctx, audit.System, u.ID, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMember(ctx, audit.System, org.ID, u.ID, auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}

	// Failures for other (even unknown) accounts from one IP add up.
	for _, email := range []string{"x@example.com", "y@example.com", "alice@example.com"} {
		if _, err := s.SignIn(ctx, email, "wrong password", "203.0.113.9"); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("sign in %s = %v", email, err)
		}
	}
	if _, err := s.SignIn(ctx, "alice@example.com", "a long enough password", "203.0.113.9"); !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("4th attempt from the IP = %v, want throttled", err)
	}
	// Another IP is not throttled (the account has 1 failure of 5).
	if _, err := s.SignIn(ctx, "alice@example.com", "a long enough password", "198.51.100.7"); err != nil {
		t.Fatalf("sign in from another IP = %v", err)
	}

	token, sess, err := s.NewSession(ctx, audit.Actor{IP: "198.51.100.7", UserAgent: "test"}, u.ID, 0, "password")
	if err != nil || sess.OrgID != org.ID || sess.CSRFToken == "" {
		t.Fatalf("NewSession = %+v %v", sess, err)
	}
	if _, err := s.SessionByToken(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByToken(ctx, token+"x"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("wrong token = %v", err)
	}
	link, err := s.NewLoginLink(ctx, audit.System, u.ID, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing bearer-like is stored in the clear.
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE position($1 in encode(token_hash, 'escape')) > 0`, token).Scan(&n); err != nil || n != 0 {
		t.Fatalf("session token stored in the clear: %d %v", n, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE sessions SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE login_links SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByToken(ctx, token); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("expired session = %v", err)
	}
	if _, _, err := s.UseLoginLink(ctx, link); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("expired link = %v", err)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewStore(pool, auth.Config{Argon: cheap})
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	owner, _, err := s.EnsureUser(ctx, audit.System, "owner@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMember(ctx, audit.System, org.ID, owner.ID, auth.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateToken(ctx, audit.System, org.ID, 0, "nobody's", auth.ScopeRead); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("token without a creator = %v", err)
	}
	value, tok, err := s.CreateToken(ctx, audit.System, org.ID, owner.ID, "ci", auth.ScopeRead)
	if err != nil || !strings.HasPrefix(value, auth.TokenPrefix) || len(value) != len(auth.TokenPrefix)+43 || tok.LastUsedAt != nil {
		t.Fatalf("CreateToken = %q %+v %v", value, tok, err)
	}
	if tok.ScopeRole() != auth.RoleViewer || tok.CreatedByEmail != "owner@acme.example" || !strings.HasPrefix(value, tok.Display) {
		t.Fatalf("token %+v", tok)
	}
	if _, _, err := s.CreateToken(ctx, audit.System, org.ID, owner.ID, "ci", "admin"); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("bad scope = %v", err)
	}
	got, err := s.TokenByValue(ctx, value)
	if err != nil || got.ID != tok.ID || got.LastUsedAt == nil || got.Role() != auth.RoleViewer {
		t.Fatalf("TokenByValue = %+v %v", got, err)
	}
	if _, err := s.RevokeToken(ctx, audit.System, org.ID+1, tok.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("revoke from another org = %v", err)
	}
	if _, err := s.RevokeToken(ctx, audit.System, org.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByValue(ctx, value); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("revoked token = %v", err)
	}
}

// TestAuditedChanges: with As, token, invitation and membership changes
// write their audit entries in their own transactions, so a change whose
// entry cannot be written does not happen.
func TestAuditedChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	base := auth.NewStore(pool, auth.Config{Argon: cheap})
	s := base
	admin := audit.Actor{Name: "admin@acme.example", IP: "192.0.2.1"}
	u, _, err := base.EnsureUser(ctx, admin, "bob@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := base.AddMember(ctx, admin, org.ID, u.ID, auth.RoleViewer); err != nil {
		t.Fatal(err)
	}
	_, tok, err := s.CreateToken(ctx, admin, org.ID, u.ID, "ci", auth.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeToken(ctx, admin, org.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, inv, err := s.Invite(ctx, admin, org.ID, 0, "new@acme.example", auth.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeInvitation(ctx, admin, org.ID, inv.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetRole(ctx, admin, org.ID, u.ID, auth.RoleResponder); err != nil {
		t.Fatal(err)
	}
	entries, err := audit.NewStore(pool).List(ctx, org.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.Action == "org.create" {
			continue // the fixture's
		}
		got = append(got, e.Action)
		if e.Actor != "admin@acme.example" || e.IP != "192.0.2.1" || e.OrgID != org.ID {
			t.Errorf("entry %+v", e)
		}
	}
	if strings.Join(got, ",") != "member.update,invitation.revoke,invitation.create,token.revoke,token.create,member.add" {
		t.Fatalf("actions %v", got)
	}

	if _, err := pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateToken(ctx, admin, org.ID, u.ID, "sneaky", auth.ScopeWrite); err == nil {
		t.Fatal("a token was created without its audit entry")
	}
	if err := s.RemoveMember(ctx, admin, org.ID, u.ID); err == nil {
		t.Fatal("a member was removed without an audit entry")
	}
	if ts, _ := base.Tokens(ctx, org.ID, auth.Page{}); len(ts) != 1 {
		t.Fatalf("%d tokens, want 1", len(ts))
	}
	if m, err := base.Membership(ctx, org.ID, u.ID); err != nil || m.Role != auth.RoleResponder {
		t.Fatalf("bob = %+v %v", m, err)
	}
}

// TestTokenBoundToCreator: a token acts with the lesser of its scope and its
// creator's current role, and removing the creator revokes it.
func TestTokenBoundToCreator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewStore(pool, auth.Config{Argon: cheap})
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	owner, _, _ := s.EnsureUser(ctx, audit.System, "owner@acme.example")
	admin, _, _ := s.EnsureUser(ctx, audit.System, "admin@acme.example")
	if _, _, err := s.AddMember(ctx, audit.System, org.ID, owner.ID, auth.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMember(ctx, audit.System, org.ID, admin.ID, auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	write, _, err := s.CreateToken(ctx, audit.System, org.ID, admin.ID, "ci", auth.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		role auth.Role
		want auth.Role
	}{
		{auth.RoleOwner, auth.RoleAdmin}, // a write token never acts as owner
		{auth.RoleAdmin, auth.RoleAdmin},
		{auth.RoleResponder, auth.RoleResponder},
		{auth.RoleViewer, auth.RoleViewer},
	} {
		if _, err := s.SetRole(ctx, audit.System, org.ID, admin.ID, tc.role); err != nil {
			t.Fatal(err)
		}
		got, err := s.TokenByValue(ctx, write)
		if err != nil || got.Role() != tc.want {
			t.Fatalf("creator %s: token role %q, %v; want %q", tc.role, got.Role(), err, tc.want)
		}
	}
	if err := s.RemoveMember(ctx, audit.System, org.ID, admin.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByValue(ctx, write); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("token of a removed member = %v", err)
	}
	ts, err := s.Tokens(ctx, org.ID, auth.Page{})
	if err != nil || len(ts) != 1 || ts[0].RevokedAt == nil || ts[0].CreatedByEmail != "admin@acme.example" {
		t.Fatalf("tokens after removal = %+v %v", ts, err)
	}
	// Coming back does not bring a revoked token back.
	if _, _, err := s.AddMember(ctx, audit.System, org.ID, admin.ID, auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByValue(ctx, write); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("revoked token after re-joining = %v", err)
	}
	if _, _, err := s.CreateToken(ctx, audit.System, org.ID+1, admin.ID, "elsewhere", auth.ScopeWrite); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("token in an organisation the creator is not in = %v", err)
	}
}

// TestSignInThrottleParallel: guesses sent at once are each counted before
// any is checked, so a burst gets no more checks than the limits; and the
// throttle on one (account, IP) pair does not lock the account's owner
// out from their own IP.
func TestSignInThrottleParallel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	// A slow machine must not turn guesses into ErrBusy: this tests the
	// throttle (TestSignInBusy tests the slots).
	s := auth.NewStore(pool, auth.Config{Argon: cheap, CheckWait: time.Minute})
	u, _, err := s.EnsureUser(ctx, audit.System, "victim@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, audit.System, u.ID, "the real long password"); err != nil {
		t.Fatal(err)
	}
	burst := func(n int, email func(i int) string, ip string) (checked, throttled int) {
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.SignIn(ctx, email(i), "a wrong guess!", ip)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			switch {
			case errors.Is(err, auth.ErrInvalidCredentials):
				checked++
			case errors.Is(err, auth.ErrThrottled):
				throttled++
			default:
				t.Fatalf("guess: %v", err)
			}
		}
		return checked, throttled
	}
	for _, tc := range []struct {
		name        string
		n           int
		email       func(int) string
		ip          string
		wantChecked int
	}{
		{"one account from one IP", 40, func(int) string { return "victim@example.com" }, "203.0.113.1", 5},
		{"many accounts from one IP", 100, func(i int) string { return fmt.Sprintf("u%d@example.com", i) }, "203.0.113.2", 20},
	} {
		checked, throttled := burst(tc.n, tc.email, tc.ip)
		if checked != tc.wantChecked || throttled != tc.n-tc.wantChecked {
			t.Errorf("%s: %d checked, %d throttled; want %d checked", tc.name, checked, throttled, tc.wantChecked)
		}
	}
	// The attacker's IP stays locked, even with the right password…
	if _, err := s.SignIn(ctx, "victim@example.com", "the real long password", "203.0.113.1"); !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("right password from the guessing IP = %v, want throttled", err)
	}
	// …but the owner, from their own IP, signs in.
	if got, err := s.SignIn(ctx, "victim@example.com", "the real long password", "198.51.100.20"); err != nil || got.ID != u.ID {
		t.Fatalf("right password from another IP = %+v %v", got, err)
	}
}
