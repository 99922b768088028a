package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

var cli = audit.Entry{Actor: "cli", UserAgent: "leakwatch-cli"}

// auditActions lists the organisation's audit entries, oldest first, and
// checks each names the CLI as actor.
func auditActions(t *testing.T, pool *pgxpool.Pool, orgID int64) string {
	t.Helper()
	entries, err := audit.NewStore(pool).List(context.Background(), orgID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Actor != "cli" || e.OrgID != orgID {
			t.Errorf("entry %+v", e)
		}
		got = append(got, e.Action)
	}
	return strings.Join(got, ",")
}

func TestCreateOrgWithOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	orgStore := orgs.NewStore(pool)
	store := auth.NewStore(pool, auth.Config{})

	r, err := store.CreateOrgWithOwner(ctx, orgStore, cli, " acme ", "Alice@Example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !r.OrgCreated || r.Org.Name != "acme" || r.Owner.Email != "alice@example.com" || r.Owner.Role != auth.RoleOwner {
		t.Fatalf("result %+v", r)
	}
	if got := auditActions(t, pool, r.Org.ID); got != "org.create,user.create,member.add" {
		t.Fatalf("audit %s", got)
	}
	userID, orgID, err := store.UseLoginLink(ctx, r.LoginToken)
	if err != nil || userID != r.Owner.UserID || orgID != r.Org.ID {
		t.Fatalf("link: user %d org %d err %v", userID, orgID, err)
	}

	// Again: nothing changes, nothing is audited, a fresh link is minted.
	again, err := store.CreateOrgWithOwner(ctx, orgStore, cli, "acme", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if again.OrgCreated || again.Org.ID != r.Org.ID || again.Owner.UserID != r.Owner.UserID || again.LoginToken == r.LoginToken {
		t.Fatalf("second run %+v", again)
	}
	if got := auditActions(t, pool, r.Org.ID); got != "org.create,user.create,member.add" {
		t.Fatalf("audit after a second run: %s", got)
	}

	// An existing viewer is raised to owner.
	bob, _, err := store.EnsureUser(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.AddMember(ctx, r.Org.ID, bob.ID, auth.RoleViewer); err != nil {
		t.Fatal(err)
	}
	raised, err := store.CreateOrgWithOwner(ctx, orgStore, cli, "acme", "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := store.Membership(ctx, r.Org.ID, bob.ID); err != nil || m.Role != auth.RoleOwner || raised.Owner.Role != auth.RoleOwner {
		t.Fatalf("bob = %+v %v (result %+v)", m, err, raised.Owner)
	}
	if got := auditActions(t, pool, r.Org.ID); got != "org.create,user.create,member.add,member.update" {
		t.Fatalf("audit after raising bob: %s", got)
	}

	// Bad input changes nothing.
	if _, err := store.CreateOrgWithOwner(ctx, orgStore, cli, "other", "not an address"); err == nil {
		t.Fatal("a bad email was accepted")
	}
	if _, err := store.CreateOrgWithOwner(ctx, orgStore, audit.Entry{}, "other", "carol@example.com"); err == nil {
		t.Fatal("a change without an actor was accepted")
	}
	if _, err := orgStore.ByName(ctx, "other"); err == nil {
		t.Fatal("organisation created by a refused call")
	}
}

// TestCreateOrgWithOwnerAtomic breaks each later step in the database and
// checks that the steps before it were rolled back with it.
func TestCreateOrgWithOwnerAtomic(t *testing.T) {
	t.Parallel()
	for _, table := range []string{"login_links", "memberships", "audit_log"} {
		t.Run(table, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := dbtest.New(t)
			if _, err := pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'step down'; END $$;
				CREATE TRIGGER refuse BEFORE INSERT ON `+table+` FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
				t.Fatal(err)
			}
			_, err := auth.NewStore(pool, auth.Config{}).CreateOrgWithOwner(ctx, orgs.NewStore(pool), cli, "acme", "alice@example.com")
			if err == nil || !strings.Contains(err.Error(), "step down") {
				t.Fatalf("err %v, want the refused insert into %s", err, table)
			}
			for _, tbl := range []string{"orgs", "users", "memberships", "login_links", "audit_log"} {
				var n int
				if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+tbl).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("%d rows left in %s", n, tbl)
				}
			}
		})
	}
}
