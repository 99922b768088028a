package paste

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/paste/pastetest"
)

// TestRunThroughRiver runs the real loop: the leader polls, River works the
// fetch jobs on the crawl queue, and the planted secret reaches the recorder.
func TestRunThroughRiver(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewFeed(pastetest.FormatJSONInline)
	defer fake.Close()
	cfg := feedConfig(t, fake, pastetest.FormatJSONInline)
	cfg.Interval = Duration(time.Second)
	src := NewFeed(cfg, fake.Client())
	b := setup(t, src)
	fake.Publish(pastetest.Paste{Key: "r1", Title: "t", User: "u", Date: time.Now().Add(-time.Minute), Text: leakText(b.secret)})

	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	if err := b.river.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stop, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		b.river.Stop(stop) //nolint:errcheck
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { b.poller(src).Run(ctx) })

	deadline := time.Now().Add(30 * time.Second)
	for len(b.rec.all()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no finding; health %+v", b.health(t, "pastesite"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f := b.rec.all()[0]; f.URL != fake.URL+"/p/r1" || f.Line != 4 {
		t.Fatalf("finding = %+v", f)
	}
}

// TestSurvivorTakesOverSourceLock runs two processes' pollers of one source
// (each with its own copy of the site, to tell them apart). When the
// leader's process dies, its session and so its advisory lock go with it,
// and the survivor must lead within its 5 s retry.
func TestSurvivorTakesOverSourceLock(t *testing.T) {
	t.Parallel()
	fakeA, fakeB := pastetest.NewFeed(pastetest.FormatRSS), pastetest.NewFeed(pastetest.FormatRSS)
	defer fakeA.Close()
	defer fakeB.Close()
	cfgA, cfgB := feedConfig(t, fakeA, pastetest.FormatRSS), feedConfig(t, fakeB, pastetest.FormatRSS)
	cfgA.Interval, cfgB.Interval = Duration(200*time.Millisecond), Duration(200*time.Millisecond)
	srcA, srcB := NewFeed(cfgA, fakeA.Client()), NewFeed(cfgB, fakeB.Client())
	b := setup(t, srcA)

	ctxA, killA := context.WithCancel(b.ctx)
	defer killA()
	ctxB, stopB := context.WithCancel(b.ctx)
	defer stopB()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopB()
	wg.Go(func() { b.poller(srcA).Run(ctxA) })
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("A to lead", func() bool { return fakeA.Requests("/recent") > 0 })
	wg.Go(func() { b.poller(srcB).Run(ctxB) })
	time.Sleep(1500 * time.Millisecond)
	if n := fakeB.Requests("/recent"); n != 0 {
		t.Fatalf("B listed %d times while A leads", n)
	}

	// kill -9: the server ends A's session (the socket closes) before A's
	// code could unlock anything.
	var killed int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	killA()
	if killed != 1 {
		t.Fatalf("%d lock sessions ended, want A's", killed)
	}
	at := time.Now()
	waitFor("B to take over", func() bool { return fakeB.Requests("/recent") > 0 })
	t.Logf("B leads %s after A's session died", time.Since(at).Round(10*time.Millisecond))
	if d := time.Since(at); d > 7*time.Second {
		t.Fatalf("B took over after %s, want within its 5 s retry", d)
	}
}
