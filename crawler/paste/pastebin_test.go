package paste

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler/paste/pastetest"
)

func newPastebin(t *testing.T, fake *pastetest.Pastebin, limit int) *Pastebin {
	t.Helper()
	cfg := mustSourceConfig(t, `{"type":"pastebin","url":"`+fake.URL+`","limit":`+itoa(limit)+`}`)
	return NewPastebin(cfg, fake.Client())
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestPastebinFindsPlantedSecret(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewPastebin()
	defer fake.Close()
	src := newPastebin(t, fake, 100)
	b := setup(t, src)

	at := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	fake.Publish(
		pastetest.Paste{Key: "a1B2c3D4", Title: "shopping", User: "bob", Date: at, Text: "milk\neggs\n"},
		pastetest.Paste{Key: "Zx9Yw8Vu", Title: "ci config", User: "mallory", Syntax: "bash", Date: at.Add(time.Minute), Text: leakText(b.secret)},
		pastetest.Paste{Key: "Qq1Qq1Qq", Title: "", User: "", Date: at.Add(2 * time.Minute), Text: "hello"},
	)
	res := b.mustPoll(t, src)
	if res.Listed != 3 || res.New != 3 || res.Gap {
		t.Fatalf("first poll = %+v, want 3 listed, 3 new, no gap", res)
	}
	b.workAll(t)

	fs := b.rec.all()
	if len(fs) != 1 {
		t.Fatalf("findings = %+v, want 1", fs)
	}
	f := fs[0]
	if f.Source != "pastebin" || f.EventID != "Zx9Yw8Vu" || f.URL != "https://pastebin.com/Zx9Yw8Vu" ||
		f.Line != 4 || f.Actor != "mallory" || f.Path != "ci config" || f.Title != "ci config" || !f.EventAt.Equal(at.Add(time.Minute)) || f.EventType != KindPastebin ||
		f.FetchedAt.IsZero() || f.FetchedAt.After(f.DetectedAt) {
		t.Fatalf("finding provenance = %+v", f)
	}
	if f.Preview == "" || containsSecret(f.Preview, b.secret) {
		t.Fatalf("preview %q must be redacted", f.Preview)
	}

	// A second poll sees nothing new: dedup by source and key.
	res = b.mustPoll(t, src)
	if res.New != 0 || res.Gap {
		t.Fatalf("second poll = %+v, want nothing new and no gap", res)
	}
	if jobs := b.takeJobs(t); len(jobs) != 0 {
		t.Fatalf("second poll queued %d fetches", len(jobs))
	}
	h := b.health(t, "pastebin")
	if h.State != StateOK || h.Listed != 3 || h.LastSuccessAt == nil || h.ItemsPerMinute <= 0 || h.LagSeconds <= 0 {
		t.Fatalf("health = %+v, want ok with 3 listed, a rate and a lag", h)
	}
	// The checkpoint holds the newest paste.
	cp, err := b.store.Register(b.ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if cp.LastKey != "Qq1Qq1Qq" || !cp.LastPasteAt.Equal(at.Add(2*time.Minute)) {
		t.Fatalf("checkpoint = %+v", cp)
	}
}

func containsSecret(s, secret string) bool {
	return strings.Contains(s, secret) || strings.Contains(s, secret[4:16])
}

func TestPastebinNotWhitelistedIsUnauthorisedNotEmpty(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewPastebin()
	defer fake.Close()
	src := newPastebin(t, fake, 100)
	b := setup(t, src)
	fake.Publish(pastetest.Paste{Key: "k1k1k1k1", Date: time.Now().Add(-time.Minute), Text: "x"})

	if _, err := b.store.Register(b.ctx, src); err != nil {
		t.Fatal(err)
	}
	if got := b.health(t, "pastebin").State; got != StatePending {
		t.Fatalf("before any poll: state %s, want pending", got)
	}

	fake.SetWhitelisted(false)
	_, err := b.poller(src).PollOnce(b.ctx)
	if !errors.Is(err, ErrUnauthorised) {
		t.Fatalf("poll error = %v, want ErrUnauthorised", err)
	}
	h := b.health(t, "pastebin")
	if h.State != StateUnauthorised || h.LastSuccessAt != nil || h.LastError == "" {
		t.Fatalf("health = %+v, want unauthorised with the error and no success", h)
	}
	if jobs := b.takeJobs(t); len(jobs) != 0 {
		t.Fatalf("a refused listing queued %d fetches", len(jobs))
	}

	fake.SetWhitelisted(true)
	b.mustPoll(t, src)
	if got := b.health(t, "pastebin").State; got != StateOK {
		t.Fatalf("after recovery: state %s, want ok", got)
	}
	// Refused again between listing and fetch: the fetch fails (to be
	// retried) and the source turns unauthorised.
	fake.SetWhitelisted(false)
	jobs := b.takeJobs(t)
	if len(jobs) != 1 {
		t.Fatalf("jobs = %d, want 1", len(jobs))
	}
	err = b.work(jobs[0], 1)
	var jc *rivertype.JobCancelError
	if !errors.Is(err, ErrUnauthorised) || errors.As(err, &jc) {
		t.Fatalf("fetch error = %v, want a retryable ErrUnauthorised", err)
	}
	if h := b.health(t, "pastebin"); h.State != StateUnauthorised || h.FetchErrors != 1 {
		t.Fatalf("health = %+v, want unauthorised with 1 fetch error", h)
	}
}

func TestPastebinDeletedBeforeFetchIsCountedNotRetried(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewPastebin()
	defer fake.Close()
	src := newPastebin(t, fake, 100)
	b := setup(t, src)
	fake.Publish(pastetest.Paste{Key: "gone0001", Date: time.Now().Add(-time.Minute), Text: "soon gone"})
	b.mustPoll(t, src)
	fake.Delete("gone0001")
	jobs := b.takeJobs(t)
	if len(jobs) != 1 {
		t.Fatalf("jobs = %d, want 1", len(jobs))
	}
	err := b.work(jobs[0], 1)
	var jc *rivertype.JobCancelError
	if !errors.As(err, &jc) || !errors.Is(err, ErrGone) {
		t.Fatalf("work = %v, want a cancelled job (no retries) for a gone paste", err)
	}
	if st, _ := b.itemStatus(t, "pastebin", "gone0001"); st != StatusDeleted {
		t.Fatalf("status = %s, want deleted", st)
	}
	if h := b.health(t, "pastebin"); h.Deleted != 1 || h.FetchErrors != 0 || h.State != StateOK {
		t.Fatalf("health = %+v, want 1 deleted, no fetch error, ok", h)
	}
}

func TestPastebinMalformedListing(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewPastebin()
	defer fake.Close()
	src := newPastebin(t, fake, 100)
	b := setup(t, src)
	fake.Publish(pastetest.Paste{Key: "ok000001", Date: time.Now().Add(-time.Minute), Text: "x"})
	b.mustPoll(t, src)

	for i, body := range []string{`[{"key": "abc", "date": `, "[{\"key\":\"\xff\xfe\"}]", `<html>502 Bad Gateway</html>`} {
		fake.ServeBody([]byte(body))
		_, err := b.poller(src).PollOnce(b.ctx)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("body %d: poll error = %v, want ErrMalformed", i, err)
		}
		want := StateDegraded
		if i >= 2 {
			want = StateFailing
		}
		if h := b.health(t, "pastebin"); h.State != want || h.ConsecutiveFailures != i+1 {
			t.Fatalf("after %d malformed listings: %+v, want %s", i+1, h, want)
		}
	}
	// One bad entry among good ones is skipped and counted.
	fake.ServeBody([]byte(`[{"key":"","title":"no key"},{"scrape_url":"x","full_url":"https://pastebin.com/good0002","date":"1764390000","key":"good0002","size":"1","expire":"0","title":"","syntax":"text","user":""}]`))
	res := b.mustPoll(t, src)
	if res.New != 1 || res.Malformed != 1 {
		t.Fatalf("poll = %+v, want 1 new and 1 malformed", res)
	}
	if h := b.health(t, "pastebin"); h.State != StateDegraded || h.Skipped != 1 || h.ConsecutiveFailures != 0 {
		t.Fatalf("health = %+v, want degraded (recent skip) with 1 skipped", h)
	}
	fake.ServeBody(nil)
	fake.Fail(http.StatusServiceUnavailable)
	if _, err := b.poller(src).PollOnce(b.ctx); err == nil {
		t.Fatal("a 503 listing must fail the poll")
	}
}

func TestPastebinGapEstimate(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewPastebin()
	defer fake.Close()
	src := newPastebin(t, fake, 3)
	b := setup(t, src)
	t0 := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	publish := func(from, to int) {
		for i := from; i <= to; i++ {
			fake.Publish(pastetest.Paste{Key: "p" + itoa(1000+i), Date: t0.Add(time.Duration(i) * time.Minute), Text: "paste " + itoa(i)})
		}
	}
	publish(0, 2)
	if res := b.mustPoll(t, src); res.Gap {
		t.Fatal("a first poll is never a gap")
	}
	publish(3, 4) // two new: the listing of 3 still reaches a known paste
	if res := b.mustPoll(t, src); res.Gap || res.New != 2 {
		t.Fatalf("poll = %+v, want 2 new and no gap", res)
	}
	publish(5, 14) // ten new: the listing's 3 are all new, 7 were missed
	res := b.mustPoll(t, src)
	if !res.Gap || res.GapEstimate != 7 {
		t.Fatalf("poll = %+v, want a gap of 7", res)
	}
	if h := b.health(t, "pastebin"); h.Gaps != 1 || h.GapEstimate != 7 || h.State != StateDegraded {
		t.Fatalf("health = %+v, want 1 gap of 7, degraded", h)
	}
}

// TestPastebinInvalidUTF8TextIsStillScanned: paste text is scanned as bytes,
// so one invalid byte next to a secret cannot hide it.
func TestPastebinInvalidUTF8TextIsStillScanned(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewPastebin()
	defer fake.Close()
	src := newPastebin(t, fake, 100)
	b := setup(t, src)
	fake.Publish(pastetest.Paste{Key: "bin00001", Date: time.Now().Add(-time.Minute), Text: "\xff\xfe latin-1 caf\xe9\n" + leakText(b.secret) + "\x80"})
	b.mustPoll(t, src)
	b.workAll(t)
	if fs := b.rec.all(); len(fs) != 1 || fs[0].Line != 5 {
		t.Fatalf("findings = %+v, want the secret on line 5", fs)
	}
}
