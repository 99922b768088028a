package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestOrgsCreateOwner runs `leakwatch orgs create NAME --owner EMAIL`
// twice: the organisation and owner are created once, and each run prints a
// working one-time sign-in link. (No t.Parallel: the command reads its
// configuration from the environment.)
func TestOrgsCreateOwner(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LEAKWATCH_BASE_URL", "https://leakwatch.example.com")
	t.Setenv("LEAKWATCH_LOG_LEVEL", "error")

	var results []orgCreated
	for range 2 {
		var out, errOut strings.Builder
		code := run(ctx, []string{"orgs", "create", "acme", "--owner", "Alice@Example.com", "--json"}, strings.NewReader(""), &out, &errOut)
		if code != 0 {
			t.Fatalf("orgs create = %d: %s", code, errOut.String())
		}
		var r orgCreated
		if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
			t.Fatalf("output %q: %v", out.String(), err)
		}
		results = append(results, r)
	}
	if !results[0].Created || results[1].Created || results[0].OrgID != results[1].OrgID || results[0].UserID != results[1].UserID {
		t.Fatalf("not idempotent: %+v", results)
	}
	if results[0].Owner != "alice@example.com" || results[0].SigninURL == results[1].SigninURL {
		t.Fatalf("results: %+v", results)
	}

	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := auth.NewStore(pool, auth.Config{})
	m, err := store.Membership(ctx, results[0].OrgID, results[0].UserID)
	if err != nil || m.Role != auth.RoleOwner {
		t.Fatalf("membership %+v %v", m, err)
	}
	for _, r := range results {
		u, err := url.Parse(r.SigninURL)
		if err != nil || u.Host != "leakwatch.example.com" || u.Path != "/signin/link" {
			t.Fatalf("sign-in URL %q", r.SigninURL)
		}
		userID, orgID, err := store.UseLoginLink(ctx, u.Query().Get("token"))
		if err != nil || userID != r.UserID || orgID != r.OrgID {
			t.Fatalf("link: user %d org %d err %v", userID, orgID, err)
		}
		// One time only.
		if _, _, err := store.UseLoginLink(ctx, u.Query().Get("token")); err == nil {
			t.Fatal("a sign-in link worked twice")
		}
	}

	// Both runs' changes are audited, once, as made by the CLI; each run's
	// sign-in link is audited too, since it signs the owner in.
	entries, err := audit.NewStore(pool).List(ctx, results[0].OrgID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if e.Actor != "cli" {
			t.Errorf("entry %+v not by the CLI", e)
		}
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "login_link.create,login_link.create,member.add,user.create,org.create" {
		t.Fatalf("audit log (newest first): %v", actions)
	}

	// Plain output names the link too.
	var out, errOut strings.Builder
	if code := run(ctx, []string{"orgs", "create", "acme", "--owner", "bob@example.com"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("orgs create = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "already exists") || !strings.Contains(out.String(), "https://leakwatch.example.com/signin/link?token=lwl_") {
		t.Fatalf("output: %s", out.String())
	}
}
