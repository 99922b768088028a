package keys_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/matcher"
)

func randomSecret(b *testing.B) string {
	var r [24]byte
	if _, err := rand.Read(r[:]); err != nil {
		b.Fatal(err)
	}
	return "ghp_" + base64.RawURLEncoding.EncodeToString(r[:])
}

// BenchmarkRegistryLoad measures the full reload (the safety net, and the
// work behind every change notification) with 10,000 active keys.
func BenchmarkRegistryLoad(b *testing.B) {
	ctx := context.Background()
	pool := dbtest.New(b)
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		b.Fatal(err)
	}
	rows := seed(b, pool, org.ID, 10000)
	r := keys.NewRegistry(pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.ResetTimer()
	for b.Loop() {
		if err := r.Load(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := len(r.Current().Keys(rows[0][2].(string))); got != 1 {
		b.Fatalf("snapshot misses key 0: %d refs", got)
	}
}

// seed inserts n active keys in one COPY, without waking registries.
func seed(b *testing.B, pool *pgxpool.Pool, orgID int64, n int) [][]any {
	b.Helper()
	ctx := context.Background()
	rows := make([][]any, 0, n)
	for i := range n {
		fp, err := matcher.Compute([]byte(randomSecret(b)), matcher.ComputeOpts{})
		if err != nil {
			b.Fatal(err)
		}
		// Registered an hour ago, as a registry in steady state sees them.
		rows = append(rows, []any{orgID, fmt.Sprintf("seed %d", i), fp.String(), "github", time.Now().Add(-time.Hour)})
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE keys DISABLE TRIGGER keys_notify`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.CopyFrom(ctx, []string{"keys"}, []string{"org_id", "name", "fingerprint", "provider", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE keys ENABLE TRIGGER keys_notify`); err != nil {
		b.Fatal(err)
	}
	return rows
}

// BenchmarkRegistryPropagation measures one registration reaching two
// registries on two pools (two worker processes) through LISTEN/NOTIFY,
// with few and with 100,000 keys already registered.
func BenchmarkRegistryPropagation(b *testing.B) {
	for _, n := range []int{0, 100000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) { benchPropagation(b, n) })
	}
}

func benchPropagation(b *testing.B, existing int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := dbtest.URL(b)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var regs []*keys.Registry
	for range 2 {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		r := keys.NewRegistry(pool, logger)
		go r.Run(ctx, time.Hour)
		regs = append(regs, r)
	}
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(admin.Close)
	store := keys.NewStore(admin)
	org, _, err := orgs.NewStore(admin).Create(ctx, audit.System, "acme")
	if err != nil {
		b.Fatal(err)
	}
	seed(b, admin, org.ID, existing)
	for _, r := range regs {
		if err := r.Load(ctx); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // listeners connect
	b.ResetTimer()
	i := 0
	for b.Loop() {
		b.StopTimer()
		fp, err := matcher.Compute([]byte(randomSecret(b)), matcher.ComputeOpts{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := store.Add(ctx, audit.System, org.ID, fmt.Sprintf("key %d", i), fp); err != nil {
			b.Fatal(err)
		}
		for _, r := range regs {
			for len(r.Current().Keys(fp.String())) == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		i++
	}
}
