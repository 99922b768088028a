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
