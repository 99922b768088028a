package keys_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/matcher"
)

func mustFP(t *testing.T, secret string) matcher.Fingerprint {
	t.Helper()
	fp, err := matcher.Compute([]byte(secret), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// TestRegistryPropagation runs two registries on two pools, as two worker
// processes would, and requires every registration, rotation and retirement
// to reach both snapshots within one second. The full reload interval is an
// hour, so only change notifications can make it. The "polled" case runs
// the registries as behind a transaction pooler (WithPolling), where no
// notification arrives and only the version poll can make it.
func TestRegistryPropagation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		poll time.Duration
	}{{"notified", 0}, {"polled", 500 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testRegistryPropagation(t, tc.poll)
		})
	}
}

func testRegistryPropagation(t *testing.T, poll time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := dbtest.URL(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var regs []*keys.Registry
	for range 2 {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		r := keys.NewRegistry(pool, logger).WithPolling(poll)
		if err := r.Load(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); r.Run(ctx, time.Hour) }()
		t.Cleanup(func() { cancel(); <-done })
		regs = append(regs, r)
	}
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	store := keys.NewStore(admin)
	org, _, err := orgs.NewStore(admin).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// Give both listeners time to connect: propagation is measured from
	// a steady state.
	time.Sleep(300 * time.Millisecond)

	secretA := "ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3Mf6Jp0Ks2Ea9T"
	secretB := "ghp_Q2wE9rT5yU1iO7pA3sD8fG4hJ6kL0zX2cV5b"
	found := func(r *keys.Registry, secret string) bool {
		return len(r.Current().Set.Scan([]byte("token = "+secret+"\n"))) == 1
	}
	within := func(what string, cond func(r *keys.Registry) bool) {
		t.Helper()
		start := time.Now()
		for i, r := range regs {
			for !cond(r) {
				if time.Since(start) > time.Second {
					t.Fatalf("%s: registry %d not updated within 1s", what, i)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		t.Logf("%s reached both registries in %v", what, time.Since(start))
	}

	k, err := store.Register(ctx, audit.System, org.ID, keys.Params{Name: "deploy", Fingerprint: mustFP(t, secretA)})
	if err != nil {
		t.Fatal(err)
	}
	within("registration", func(r *keys.Registry) bool {
		refs := r.Current().Keys(mustFP(t, secretA).String())
		return found(r, secretA) && len(refs) == 1 && refs[0].ID == k.ID && refs[0].OrgID == org.ID && refs[0].Name == "deploy"
	})

	if _, err := store.Rotate(ctx, audit.System, org.ID, k.ID, mustFP(t, secretB)); err != nil {
		t.Fatal(err)
	}
	within("rotation", func(r *keys.Registry) bool { return found(r, secretB) && !found(r, secretA) })

	// Another organisation registers the same secret; a rename follows.
	other, _, err := orgs.NewStore(admin).Create(ctx, audit.System, "globex")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := store.Register(ctx, audit.System, other.ID, keys.Params{Name: "billing", Fingerprint: mustFP(t, secretB)})
	if err != nil {
		t.Fatal(err)
	}
	renamed := "deploy (renamed)"
	if _, err := store.Edit(ctx, audit.System, org.ID, k.ID, keys.Update{Name: &renamed}); err != nil {
		t.Fatal(err)
	}
	within("a second organisation and a rename", func(r *keys.Registry) bool {
		refs := r.Current().Keys(mustFP(t, secretB).String())
		return len(refs) == 2 && (refs[0].Name == renamed || refs[1].Name == renamed)
	})

	if _, err := store.SetState(ctx, audit.System, org.ID, k.ID, keys.StateRetired); err != nil {
		t.Fatal(err)
	}
	within("retirement of one of two", func(r *keys.Registry) bool {
		refs := r.Current().Keys(mustFP(t, secretB).String())
		return found(r, secretB) && len(refs) == 1 && refs[0].ID == k2.ID
	})
	if _, err := store.SetState(ctx, audit.System, other.ID, k2.ID, keys.StateRevoked); err != nil {
		t.Fatal(err)
	}
	within("revocation of the last", func(r *keys.Registry) bool {
		return !found(r, secretB) && len(r.Current().Keys(mustFP(t, secretB).String())) == 0
	})
	// A full reload agrees with the incremental result.
	for _, r := range regs {
		if err := r.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if found(r, secretA) || found(r, secretB) {
			t.Fatal("a full reload matches a retired or revoked key")
		}
	}
}

// TestRegistryKeepsRotatedFingerprints: with a retention, a rotation reaches
// a running registry through change notifications with both secrets
// matched, the old one still naming its key; retiring the key drops both,
// and a full reload drops fingerprints replaced longer ago than the
// retention.
func TestRegistryKeepsRotatedFingerprints(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := keys.NewRegistry(pool, logger).WithRotatedRetention(time.Hour)
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, time.Hour) }()
	t.Cleanup(func() { cancel(); <-done })
	store := keys.NewStore(pool)
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	secretA := "ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3Mf6Jp0Ks2Ea9T"
	secretB := "ghp_Q2wE9rT5yU1iO7pA3sD8fG4hJ6kL0zX2cV5b"
	refs := func(secret string) []keys.Ref {
		snap := r.Current()
		var out []keys.Ref
		for _, f := range snap.Set.Scan([]byte("token = " + secret + "\n")) {
			out = append(out, snap.Keys(f.Fingerprint)...)
		}
		return out
	}
	within := func(what string, cond func() bool) {
		t.Helper()
		for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 2*time.Second {
				t.Fatalf("%s: registry not updated within 2s", what)
			}
		}
	}
	k, err := store.Register(ctx, audit.System, org.ID, keys.Params{Name: "deploy", Fingerprint: mustFP(t, secretA)})
	if err != nil {
		t.Fatal(err)
	}
	within("registration", func() bool { return len(refs(secretA)) == 1 })
	if _, err := store.Rotate(ctx, audit.System, org.ID, k.ID, mustFP(t, secretB)); err != nil {
		t.Fatal(err)
	}
	within("rotation", func() bool {
		a, b := refs(secretA), refs(secretB)
		return len(b) == 1 && len(a) == 1 && a[0].ID == k.ID
	})
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if a := refs(secretA); len(a) != 1 || a[0].ID != k.ID {
		t.Fatalf("full reload within retention: old secret names %v", a)
	}
	if _, err := pool.Exec(ctx, `UPDATE key_fingerprints SET replaced_at = now() - interval '2 hours' WHERE replaced_at IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if a, b := refs(secretA), refs(secretB); len(a) != 0 || len(b) != 1 {
		t.Fatalf("past retention: old secret %d refs, current %d", len(a), len(b))
	}
	if _, err := pool.Exec(ctx, `UPDATE key_fingerprints SET replaced_at = now() WHERE replaced_at IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetState(ctx, audit.System, org.ID, k.ID, keys.StateRetired); err != nil {
		t.Fatal(err)
	}
	within("retirement", func() bool { return len(refs(secretA)) == 0 && len(refs(secretB)) == 0 })
}

// TestRegistryWarnsOfSlowFingerprints registers a key with a fingerprint in
// the format made before kind "w" (a long kind "s"), which slows every scan,
// and requires one warning naming it, none again while nothing changes, one
// counting the old fingerprint still kept once the key is rotated to a kind
// "w" one, and none after its retention.
func TestRegistryWarnsOfSlowFingerprints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	var logs bytes.Buffer
	r := keys.NewRegistry(pool, slog.New(slog.NewTextHandler(&logs, nil))).WithRotatedRetention(time.Hour)
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := matcher.ParseFingerprint("lw1:s::28:0123456789:" + strings.Repeat("ab", 16))
	if err != nil || !legacy.Slow() {
		t.Fatalf("legacy fingerprint: %v, slow %v", err, legacy.Slow())
	}
	current := mustFP(t, "correct horse!battery staple 42")
	if current.Slow() {
		t.Fatalf("%s is slow", current)
	}
	store := keys.NewStore(pool)
	k, err := store.Register(ctx, audit.System, org.ID, keys.Params{Name: "db password", Fingerprint: legacy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Register(ctx, audit.System, org.ID, keys.Params{Name: "admin password", Fingerprint: current}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Count(logs.String(), "level=WARN"); got != 1 || !strings.Contains(logs.String(), fmt.Sprintf("count=1 key_ids=[%d] kept_after_rotation=0", k.ID)) {
		t.Fatalf("want one warning naming key %d, got:\n%s", k.ID, logs.String())
	}
	if _, err := store.Rotate(ctx, audit.System, org.ID, k.ID, mustFP(t, "Tr0ub4dor&3 horse!Battery#9")); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(logs.String(), "level=WARN"); got != 1 || !strings.Contains(logs.String(), "count=0 key_ids=[] kept_after_rotation=1") {
		t.Fatalf("after the rotation: want one warning for the kept fingerprint, got:\n%s", logs.String())
	}
	if _, err := pool.Exec(ctx, `UPDATE key_fingerprints SET replaced_at = now() - interval '2 hours' WHERE replaced_at IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("warned past the retention:\n%s", logs.String())
	}
}
