package paste

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/crawler/paste/pastetest"
)

// feedConfig configures a source for a pastetest.Feed of format.
func feedConfig(t *testing.T, fake *pastetest.Feed, format string) SourceConfig {
	t.Helper()
	switch format {
	case pastetest.FormatJSON:
		return mustSourceConfig(t, `{"type":"feed","name":"pastesite","format":"json","url":"`+fake.FeedURL()+`",
			"json":{"items":"data.pastes","id":"id","title":"title","author":"user.name","date":"created","url":"url","raw_url":"raw"}}`)
	case pastetest.FormatJSONInline:
		return mustSourceConfig(t, `{"type":"feed","name":"pastesite","format":"json","url":"`+fake.FeedURL()+`",
			"json":{"items":"data.pastes","id":"id","title":"title","author":"user.name","date":"created","url":"url","content":"content"}}`)
	case pastetest.FormatRSS:
		return mustSourceConfig(t, `{"type":"feed","name":"pastesite","format":"rss","url":"`+fake.FeedURL()+`","raw_url_template":"`+fake.URL+`/raw/{id}"}`)
	case pastetest.FormatAtom:
		return mustSourceConfig(t, `{"type":"feed","name":"pastesite","format":"atom","url":"`+fake.FeedURL()+`","raw_url_template":"`+fake.URL+`/raw/{id}"}`)
	}
	t.Fatalf("format %s", format)
	return SourceConfig{}
}

func TestFeedFormatsFindPlantedSecret(t *testing.T) {
	t.Parallel()
	for _, format := range []string{pastetest.FormatJSON, pastetest.FormatJSONInline, pastetest.FormatRSS, pastetest.FormatAtom} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			fake := pastetest.NewFeed(format)
			defer fake.Close()
			src := NewFeed(feedConfig(t, fake, format), fake.Client())
			b := setup(t, src)
			at := time.Date(2026, 11, 29, 4, 30, 0, 0, time.UTC)
			fake.Publish(
				pastetest.Paste{Key: "x7Kq2", Title: "notes", User: "alice", Date: at, Text: "nothing here\n"},
				pastetest.Paste{Key: "m9Zt4", Title: "env dump", User: "mallory", Date: at.Add(time.Minute), Text: leakText(b.secret)},
			)
			if res := b.mustPoll(t, src); res.New != 2 || res.Malformed != 0 {
				t.Fatalf("poll = %+v, want 2 new", res)
			}
			b.workAll(t)
			fs := b.rec.all()
			if len(fs) != 1 {
				t.Fatalf("findings = %+v, want 1", fs)
			}
			f := fs[0]
			if f.Source != "pastesite" || f.URL != fake.URL+"/p/m9Zt4" || f.Line != 4 || f.Actor != "mallory" ||
				f.Path != "env dump" || f.Title != "env dump" || !f.EventAt.Equal(at.Add(time.Minute)) || f.EventType != KindFeed {
				t.Fatalf("finding provenance = %+v", f)
			}
			if h := b.health(t, "pastesite"); h.State != StateOK || h.Listed != 2 {
				t.Fatalf("health = %+v", h)
			}
		})
	}
}

func TestFeedMalformedAndRecovery(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewFeed(pastetest.FormatJSON)
	defer fake.Close()
	src := NewFeed(feedConfig(t, fake, pastetest.FormatJSON), fake.Client())
	b := setup(t, src)
	fake.Publish(pastetest.Paste{Key: "a1", Date: time.Now().Add(-time.Minute), Text: "x"})

	cases := []struct {
		name string
		body string
	}{
		{"malformed JSON", `{"data":{"pastes":[{"id":"a1",`},
		{"invalid UTF-8", "{\"data\":{\"pastes\":[{\"id\":\"a\xc3\x28\"}]}}"},
		{"no array where mapped", `{"data":{"pastes":{"id":"a1"}}}`},
	}
	for i, c := range cases {
		fake.ServeBody([]byte(c.body))
		_, err := b.poller(src).PollOnce(b.ctx)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: poll error = %v, want ErrMalformed", c.name, err)
		}
		if h := b.health(t, "pastesite"); h.ConsecutiveFailures != i+1 || h.State == StateOK || h.State == StatePending {
			t.Fatalf("%s: health = %+v, must not look fine", c.name, h)
		}
	}
	if got := b.health(t, "pastesite").State; got != StateFailing {
		t.Fatalf("after 3 failed listings: %s, want failing", got)
	}
	fake.ServeBody(nil)
	b.mustPoll(t, src)
	if got := b.health(t, "pastesite").State; got != StateOK {
		t.Fatalf("after recovery: %s, want ok", got)
	}
}

func TestFeedRawFetchErrors(t *testing.T) {
	t.Parallel()
	fake := pastetest.NewFeed(pastetest.FormatRSS)
	defer fake.Close()
	src := NewFeed(feedConfig(t, fake, pastetest.FormatRSS), fake.Client())
	b := setup(t, src)
	now := time.Now().Add(-time.Minute)
	fake.Publish(pastetest.Paste{Key: "del410", Date: now, Text: "a"})
	b.mustPoll(t, src)
	fake.Delete("del410", http.StatusGone)
	jobs := b.takeJobs(t)
	var jc *rivertype.JobCancelError
	if err := b.work(jobs[0], 1); !errors.As(err, &jc) {
		t.Fatalf("410: work = %v, want cancelled", err)
	}
	if st, _ := b.itemStatus(t, "pastesite", jobs[0].Item.Key()); st != StatusDeleted {
		t.Fatalf("status %s, want deleted", st)
	}

	// A raw fetch failing with 500 is retried; the last attempt marks the
	// paste failed. The source is degraded meanwhile.
	fake.Publish(pastetest.Paste{Key: "boom", Date: now, Text: "b"})
	b.mustPoll(t, src)
	jobs = b.takeJobs(t)
	if len(jobs) != 1 {
		t.Fatalf("jobs = %d, want 1", len(jobs))
	}
	args := jobs[0]
	args.Item.RawURL = fake.URL + "/recent" // answered by the fault below
	fake.Fail(http.StatusInternalServerError)
	err := b.work(args, 1)
	if err == nil || errors.As(err, &jc) {
		t.Fatalf("500: work = %v, want a retryable error", err)
	}
	if h := b.health(t, "pastesite"); h.FetchErrors != 1 || h.State != StateDegraded {
		t.Fatalf("health = %+v, want 1 fetch error, degraded", h)
	}
	if err := b.work(args, fetchMaxAttempts); err == nil {
		t.Fatal("last attempt must still fail")
	}
	if st, _ := b.itemStatus(t, "pastesite", args.Item.Key()); st != StatusFailed {
		t.Fatalf("status %s, want failed after the last attempt", st)
	}
	if h := b.health(t, "pastesite"); h.Failed != 1 {
		t.Fatalf("health = %+v, want 1 failed", h)
	}
}

func TestFeedRejectsForeignRawHosts(t *testing.T) {
	t.Parallel()
	cfg := mustSourceConfig(t, `{"type":"feed","name":"f","format":"json","url":"https://paste.example/api/recent",
		"json":{"items":"","id":"id","raw_url":"raw"}}`)
	f := NewFeed(cfg, nil)
	l, _, err := f.parseJSON([]byte(`[{"id":"1","raw":"/raw/1"},{"id":"2","raw":"http://169.254.169.254/latest/meta-data"},{"id":"3","raw":"file:///etc/passwd"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].RawURL != "https://paste.example/raw/1" || l.Malformed != 2 {
		t.Fatalf("listing = %+v, want only the same-host raw URL", l)
	}
}

func TestFetchErrorsHideURLQuery(t *testing.T) {
	t.Parallel()
	cfg := mustSourceConfig(t, `{"type":"feed","name":"f","format":"rss","url":"http://127.0.0.1:1/recent?api_key=s3cr3t-feed-key"}`)
	_, err := NewFeed(cfg, &http.Client{Timeout: time.Second}).List(context.Background(), Checkpoint{})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error = %v, want a failure without the query", err)
	}
}
