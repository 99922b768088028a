package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestCLIChangesAreAudited: the commands that change state write their
// audit entries as the actor "cli" (set-slack used to write none). (Not
// parallel: the CLI reads its settings from the environment.)
func TestCLIChangesAreAudited(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LEAKWATCH_LOG_LEVEL", "error")

	steps := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"orgs", "create", "acme"}},
		{"\n", []string{"orgs", "set-slack", "acme"}}, // an empty URL: alerts off
		{"", []string{"orgs", "set-revocation", "acme", "--url", "https://revoke.acme.example/leak"}},
		{"ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3Mf6Jp0Ks2Ea9T\n", []string{"keys", "add", "--org", "acme", "--name", "deploy"}},
	}
	for _, st := range steps {
		if code, _, errOut := runCLI(t, st.stdin, st.args...); code != 0 {
			t.Fatalf("%s = %d: %s", strings.Join(st.args, " "), code, errOut)
		}
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows, err := pool.Query(ctx, `SELECT action || ' ' || actor || ' ' || details::text FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`org.create cli {"name": "acme"}`,
		`org.update cli {"slack_webhook": false}`,
		`revocation_endpoint.set cli {"hmac": false}`,
		`key.create cli`,
	}
	if len(got) != len(want) {
		t.Fatalf("audit log:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("entry %d = %q, want %q…", i, got[i], want[i])
		}
	}
}
