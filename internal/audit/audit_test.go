package audit_test

import (
	"context"
	"testing"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// TestAppendOnly: the database itself refuses to change or empty the audit
// log, whoever connects.
func TestAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	if err := audit.Write(ctx, pool, audit.Entry{Actor: "a@example.com", Action: "test.write", ObjectType: "test", ObjectID: "1"}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE audit_log SET actor = 'someone else'`,
		`DELETE FROM audit_log`,
		`TRUNCATE audit_log`,
		`TRUNCATE audit_log CASCADE`,
	} {
		if _, err := pool.Exec(ctx, stmt); err == nil {
			t.Errorf("%s: no error", stmt)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE actor = 'a@example.com'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d entries, %v; want the one written", n, err)
	}
}
