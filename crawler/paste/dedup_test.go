package paste

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakwatch/leakwatch/crawler/paste/pastetest"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/matcher"
)

// TestContentDedup reposts the same texts to three sources: a clean text is
// scanned once and recorded three times; a text holding a key is recorded
// (and found) at every site, each with its own provenance.
func TestContentDedup(t *testing.T) {
	t.Parallel()
	pb := pastetest.NewPastebin()
	defer pb.Close()
	feedA := pastetest.NewFeed(pastetest.FormatJSON)
	defer feedA.Close()
	feedB := pastetest.NewFeed(pastetest.FormatAtom)
	defer feedB.Close()
	srcPB := newPastebin(t, pb, 100)
	cfgA := feedConfig(t, feedA, pastetest.FormatJSON)
	cfgA.Name = "site-a"
	cfgB := feedConfig(t, feedB, pastetest.FormatAtom)
	cfgB.Name = "site-b"
	srcA, srcB := NewFeed(cfgA, feedA.Client()), NewFeed(cfgB, feedB.Client())
	b := setup(t, srcPB, srcA, srcB)

	// Dumps big enough for the pipeline's content dedup, which skips texts
	// that scan faster than they can be looked up.
	clean := strings.Repeat("SELECT * FROM users WHERE id = 1;\n", 1000)
	leak := bigLeakText(b.secret)
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	pb.Publish(pastetest.Paste{Key: "clean001", Date: at, Text: clean}, pastetest.Paste{Key: "leak0001", Date: at, Text: leak})
	feedA.Publish(pastetest.Paste{Key: "c1", Date: at, Text: clean}, pastetest.Paste{Key: "l1", Date: at, Text: leak})
	feedB.Publish(pastetest.Paste{Key: "c2", Date: at, Text: clean})
	for _, src := range []Source{srcPB, srcA, srcB} {
		b.mustPoll(t, src)
		b.workAll(t)
	}
	scanned := b.scannedDocs(t, "pastebin") + b.scannedDocs(t, "site-a") + b.scannedDocs(t, "site-b")
	if scanned != 2 {
		t.Fatalf("documents scanned = %v, want 2 (each text once)", scanned)
	}
	hits := b.counter(t, "leakwatch_crawler_documents_deduplicated_total", "site-a") + b.counter(t, "leakwatch_crawler_documents_deduplicated_total", "site-b")
	if hits != 3 {
		t.Fatalf("deduplicated documents = %v, want 3", hits)
	}
	// Atom entries are keyed by their id (a tag: URI ending in the key).
	atomKey := "tag:" + feedB.Listener.Addr().String() + ",2026:c2"
	for _, c := range []struct{ source, key string }{{"site-a", "c1"}, {"site-b", atomKey}} {
		if st, _ := b.itemStatus(t, c.source, c.key); st != StatusScanned {
			t.Fatalf("%s/%s: status %s, want scanned", c.source, c.key, st)
		}
	}
	fs := b.rec.all()
	if len(fs) != 2 || fs[0].Source == fs[1].Source || fs[0].Line != 4 || fs[1].Line != 4 {
		t.Fatalf("findings = %+v, want one per site, both on line 4", fs)
	}
	if _, n := b.itemStatus(t, "site-a", "l1"); n != 1 {
		t.Fatalf("site-a/l1 findings = %d, want 1", n)
	}
}

// TestContentDedupAfterNewKey: a text scanned clean before a key was
// registered is scanned again when reposted afterwards, and the key found.
func TestContentDedupAfterNewKey(t *testing.T) {
	t.Parallel()
	pb := pastetest.NewPastebin()
	defer pb.Close()
	feed := pastetest.NewFeed(pastetest.FormatJSON)
	defer feed.Close()
	srcPB, srcFeed := newPastebin(t, pb, 100), NewFeed(feedConfig(t, feed, pastetest.FormatJSON), feed.Client())
	b := setup(t, srcPB, srcFeed)
	later := randomToken(t, "ghp_", 36)
	at := time.Now().UTC().Add(-time.Minute)
	pb.Publish(pastetest.Paste{Key: "before01", Date: at, Text: bigLeakText(later)})
	b.mustPoll(t, srcPB)
	b.workAll(t)
	if fs := b.rec.all(); len(fs) != 0 {
		t.Fatalf("findings before registration = %+v", fs)
	}

	fp, err := matcher.Compute([]byte(later), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	var orgID int64
	if err := b.pool.QueryRow(b.ctx, `SELECT id FROM orgs LIMIT 1`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.NewStore(b.pool).Add(b.ctx, audit.System, orgID, "registered later", fp); err != nil {
		t.Fatal(err)
	}
	if err := b.registry.Load(b.ctx); err != nil {
		t.Fatal(err)
	}
	feed.Publish(pastetest.Paste{Key: "after1", Date: at, Text: bigLeakText(later)})
	b.mustPoll(t, srcFeed)
	b.workAll(t)
	if fs := b.rec.all(); len(fs) != 1 || fs[0].Source != "pastesite" {
		t.Fatalf("findings after registration = %+v, want the repost", fs)
	}
}

// bigLeakText is leakText padded past the pipeline's dedup threshold.
func bigLeakText(secret string) string {
	return leakText(secret) + strings.Repeat("# padding line of a long paste dump\n", 600)
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, json, wantErr string
	}{
		{"all three", `{"sources":[{"type":"gist"},{"type":"pastebin","limit":250,"interval":"90s"},
			{"type":"feed","name":"dpaste","format":"rss","url":"https://dpaste.example/rss","raw_url_template":"https://dpaste.example/{id}/raw"}]}`, ""},
		{"empty", `{"sources":[]}`, ""},
		{"unknown type", `{"sources":[{"type":"hastebin"}]}`, "unknown type"},
		{"unknown field", `{"sources":[{"type":"gist","token":"x"}]}`, "unknown field"},
		{"feed without name", `{"sources":[{"type":"feed","format":"rss","url":"https://x.example/rss"}]}`, "name must be"},
		{"feed without url", `{"sources":[{"type":"feed","name":"x","format":"rss"}]}`, "absolute http(s) URL"},
		{"json feed without mapping", `{"sources":[{"type":"feed","name":"x","format":"json","url":"https://x.example/"}]}`, "json mapping"},
		{"json feed without text", `{"sources":[{"type":"feed","name":"x","format":"json","url":"https://x.example/","json":{"id":"id"}}]}`, "json.content"},
		{"bad format", `{"sources":[{"type":"feed","name":"x","format":"html","url":"https://x.example/"}]}`, "format must be"},
		{"duplicate name", `{"sources":[{"type":"pastebin"},{"type":"pastebin"}]}`, "used twice"},
		{"bad interval", `{"sources":[{"type":"gist","interval":"soon"}]}`, "bad duration"},
		{"too fast", `{"sources":[{"type":"gist","interval":"10ms"}]}`, "at least 1s"},
		{"pastebin limit", `{"sources":[{"type":"pastebin","limit":1000}]}`, "limit must be"},
		{"gist with url", `{"sources":[{"type":"gist","url":"https://api.github.com"}]}`, "url must be empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseConfig([]byte(c.json))
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.name == "all three" {
					pb := cfg.Sources[1]
					if cfg.Sources[0].Name != "gist" || cfg.Sources[0].Limit != gistMaxPages || pb.URL != PastebinURLDefault ||
						pb.Interval != Duration(90*time.Second) || pb.MaxBytes != MaxBytesDefault ||
						pb.FetchInterval != Duration(time.Second) || cfg.Sources[2].FetchInterval != 0 {
						t.Fatalf("defaults not applied: %+v", cfg.Sources)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestHealthState(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	cases := []struct {
		name string
		h    Health
		want string
	}{
		{"never polled", Health{}, StatePending},
		{"fine", Health{LastPollAt: ago(time.Second), LastSuccessAt: ago(time.Second)}, StateOK},
		{"refused", Health{LastPollAt: ago(time.Second), LastSuccessAt: ago(time.Hour), unauthorised: true}, StateUnauthorised},
		{"never succeeded", Health{LastPollAt: ago(time.Second), ConsecutiveFailures: 1}, StateFailing},
		{"one failure", Health{LastPollAt: ago(time.Second), LastSuccessAt: ago(time.Minute), ConsecutiveFailures: 1}, StateDegraded},
		{"three failures", Health{LastPollAt: ago(time.Second), LastSuccessAt: ago(time.Minute), ConsecutiveFailures: 3}, StateFailing},
		{"nobody polls", Health{LastPollAt: ago(time.Hour), LastSuccessAt: ago(time.Hour)}, StateFailing},
		{"recent fetch error", Health{LastPollAt: ago(time.Second), LastSuccessAt: ago(time.Second), LastFetchErrorAt: ago(time.Minute)}, StateDegraded},
		{"old fetch error", Health{LastPollAt: ago(time.Second), LastSuccessAt: ago(time.Second), LastFetchErrorAt: ago(time.Hour)}, StateOK},
		{"recent gap", Health{LastPollAt: ago(time.Second), LastSuccessAt: ago(time.Second), LastGapAt: ago(time.Minute)}, StateDegraded},
		{"recent skip", Health{LastPollAt: ago(time.Second), LastSuccessAt: ago(time.Second), lastSkipAt: ago(time.Minute)}, StateDegraded},
		{"fetching stalled", Health{LastPollAt: ago(time.Second), LastSuccessAt: ago(time.Second), OldestQueuedAt: ago(time.Hour)}, StateDegraded},
		{"fetch queue moving", Health{LastPollAt: ago(time.Second), LastSuccessAt: ago(time.Second), OldestQueuedAt: ago(time.Minute)}, StateOK},
	}
	for _, c := range cases {
		c.h.PollInterval = 60
		if got := c.h.state(now); got != c.want {
			t.Errorf("%s: state = %s, want %s", c.name, got, c.want)
		}
	}
}

func TestOnePollerPerSource(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, ok, err := tryLock(b.ctx, b.pool, "pastebin")
	if err != nil || !ok {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if _, ok, err := tryLock(b.ctx, b.pool, "pastebin"); err != nil || ok {
		t.Fatalf("second lock on the same source: got %v (%v), want refused", ok, err)
	}
	other, ok, err := tryLock(b.ctx, b.pool, "gist")
	if err != nil || !ok {
		t.Fatalf("another source: %v %v", ok, err)
	}
	unlock(b.ctx, other, "gist")
	unlock(b.ctx, a, "pastebin") // the leader steps down
	c, ok, err := tryLock(b.ctx, b.pool, "pastebin")
	if err != nil || !ok {
		t.Fatalf("takeover: %v %v", ok, err)
	}
	unlock(b.ctx, c, "pastebin")
}

func TestCollectorReportsHealth(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewPastebin()
	defer fake.Close()
	src := newPastebin(t, fake, 100)
	b := setup(t, src)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(b.store))
	fake.SetWhitelisted(false)
	b.poller(src).PollOnce(b.ctx) //nolint:errcheck

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "leakwatch_paste_source_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" {
					got[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	if got[StateUnauthorised] != 1 || got[StateOK] != 0 || len(got) != len(States) {
		t.Fatalf("state metric = %v, want unauthorised=1", got)
	}
}
