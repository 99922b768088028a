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

	"github.com/leakwatch/leakwatch/internal/dbtest"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
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
	org, _, err := orgs.NewStore(pool).Create(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	rows := make([][]any, 0, n)
	for i := range n {
		fp, err := matcher.Compute([]byte(randomSecret(b)), matcher.ComputeOpts{})
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, []any{org.ID, fmt.Sprintf("key %d", i), fp.String(), "github"})
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE keys DISABLE TRIGGER keys_notify`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.CopyFrom(ctx, []string{"keys"}, []string{"org_id", "name", "fingerprint", "provider"}, copyRows(rows)); err != nil {
		b.Fatal(err)
	}
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

func copyRows(rows [][]any) pgx.CopyFromSource { return pgx.CopyFromRows(rows) }

// BenchmarkRegistryPropagation measures one registration reaching two
// registries on two pools (two worker processes) through LISTEN/NOTIFY.
func BenchmarkRegistryPropagation(b *testing.B) {
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
	org, _, err := orgs.NewStore(admin).Create(ctx, "acme")
	if err != nil {
		b.Fatal(err)
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
		if _, err := store.Add(ctx, org.ID, fmt.Sprintf("key %d", i), fp); err != nil {
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
