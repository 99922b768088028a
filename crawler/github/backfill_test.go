package github

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

func TestArchiveFileName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hour time.Time
		want string
	}{
		{time.Date(2015, 1, 1, 15, 0, 0, 0, time.UTC), "2015-01-01-15.json.gz"},
		{time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), "2026-12-04-0.json.gz"},
		{time.Date(2026, 12, 4, 9, 59, 0, 0, time.FixedZone("CET", 3600)), "2026-12-04-8.json.gz"},
	} {
		equal(t, tc.want, ArchiveFileName(tc.hour))
		equal(t, tc.want, githubtest.ArchiveFileName(tc.hour))
	}
}

// TestLineReaderBounded reads lines of every size around the bound: long
// lines are reported oversized (their bytes dropped as read), the next line
// is intact, and a last line without a newline still counts.
func TestLineReaderBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 200<<10) // longer than bufio's 64 KiB buffer
	in := "a\n" + long + "\nb\r\n\n" + strings.Repeat("y", 100) + "\nlast"
	lr := newLineReader(strings.NewReader(in), 100)
	type got struct {
		line      string
		oversized bool
	}
	var out []got
	for {
		l, over, err := lr.next()
		if err == io.EOF {
			break
		}
		noErr(t, err)
		out = append(out, got{string(l), over})
	}
	equal(t, []got{{"a", false}, {"", true}, {"b", false}, {"", false}, {strings.Repeat("y", 100), false}, {"last", false}}, out)
}

// TestArchiveEventID reads ids from GH Archive's real lines (id first: the
// fast path) and from lines with other key orders.
func TestArchiveEventID(t *testing.T) {
	t.Parallel()
	recorded, err := githubtest.Recorded()
	noErr(t, err)
	isTrue(t, bytes.HasPrefix(recorded[0], []byte(`{"id":"`)), "the sample is in GH Archive's key order")
	for _, raw := range recorded[:50] {
		h, err := eventHead(raw)
		noErr(t, err)
		id, err := archiveEventID(raw)
		noErr(t, err)
		equal(t, h.id, id)
	}
	id, err := archiveEventID([]byte(`{"type":"WatchEvent","id":"42"}`))
	noErr(t, err)
	equal(t, int64(42), id)
	for _, bad := range []string{`{not json`, `{"id":"x1"}`, `{"id":""}`, `[]`, `{"id":"-3"}`} {
		_, err := archiveEventID([]byte(bad))
		isErr(t, err, bad)
	}
}

// teeRecorder records findings as incidents (occurrences) and in rec.
type teeRecorder struct {
	mu  sync.Mutex
	svc *incidents.Service
	rec *recorder
}

func (r *teeRecorder) Record(ctx context.Context, fs []crawler.Finding) error {
	r.mu.Lock()
	svc := r.svc
	r.mu.Unlock()
	if err := svc.Record(ctx, fs); err != nil {
		return err
	}
	return r.rec.Record(ctx, fs)
}

// clock is a settable test clock.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.t.Store(&t) }
func (c *clock) now() time.Time   { return *c.t.Load() }

type backfillHarness struct {
	testBundle
	archive *httptest.Server
	ew      *EventsWorker
	tee     *teeRecorder
	hour    time.Time // the hour of the planted events, ended hours ago
	poller  *Poller
	pollAt  *clock
}

// newBackfillHarness gives a database, a fake GitHub with its archive, a
// poller whose clock stands in hour (three hours ago), and a pipeline that
// records into real incidents.
func newBackfillHarness(t *testing.T, archive http.Handler) *backfillHarness {
	t.Helper()
	h := &backfillHarness{testBundle: setup(t, FetchConfig{})}
	if archive == nil {
		archive = h.gh.ArchiveHandler()
	}
	h.archive = httptest.NewServer(archive)
	t.Cleanup(h.archive.Close)
	h.tee = &teeRecorder{rec: h.rec}
	h.pipeline = crawler.NewPipeline(h.registry, h.tee, nil)
	h.fetcher = NewFetcher(h.client, h.pipeline, FetchConfig{}, nil, h.logger)
	h.ew = NewEventsWorker(h.pool, h.pipeline, nil, h.logger)
	h.hour = time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	h.pollAt = newClock(h.hour.Add(30 * time.Minute))
	h.poller = NewPoller(PollerConfig{Client: h.client, Pool: h.pool, Logger: h.logger, NoWatches: true, Now: h.pollAt.now})
	return h
}

func (h *backfillHarness) backfill(t *testing.T, cfg BackfillConfig) *Backfill {
	t.Helper()
	cfg.BaseURL = h.archive.URL
	cfg.HTTP = h.archive.Client()
	cfg.Pool = h.pool
	cfg.Events = h.ew
	cfg.Logger = h.logger
	if cfg.PublishDelay == 0 {
		cfg.PublishDelay = time.Minute
	}
	return NewBackfill(cfg)
}

// start runs a River client with the live and backfill workers.
func (h *backfillHarness) start(t *testing.T, b *Backfill) *jobs.Client {
	t.Helper()
	ws := river.NewWorkers()
	AddWorkers(ws, h.ew)
	AddFetchWorkers(ws, h.fetcher)
	AddBackfillWorkers(ws, b)
	rc, err := jobs.NewClient(h.pool, jobs.Config{Logger: h.logger, Workers: ws, Scan: 2, Crawl: 2, TestOnly: true})
	noErr(t, err)
	h.tee.mu.Lock()
	h.tee.svc = incidents.NewService(h.pool, rc, h.logger, incidents.Config{})
	h.tee.mu.Unlock()
	h.poller.river = rc
	noErr(t, rc.Start(context.Background()))
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })
	return rc
}

// plantGap publishes a first poll's events, then a burst that pushes more
// than the timeline holds between two polls: events first+5 … first+104 are
// never seen live. The missed window holds comments and pushes carrying the
// secret; it returns their event ids.
func (h *backfillHarness) plantGap(t *testing.T, first int64) (planted []int64) {
	t.Helper()
	ctx := context.Background()
	at := func(id int64) time.Time { return h.hour.Add(time.Duration(id-first) * time.Second) }
	var warm []json.RawMessage
	for id := first; id < first+5; id++ {
		warm = append(warm, githubtest.Event(id, "WatchEvent", "octo/other", "bob", at(id), map[string]any{"action": "started"}))
	}
	h.gh.Publish(warm...)
	_, err := h.poller.PollOnce(ctx)
	noErr(t, err)

	leak := "GITHUB_TOKEN=" + h.secret
	var burst []json.RawMessage
	for id := first + 5; id < first+405; id++ {
		switch {
		case id == first+20 || id == first+60:
			burst = append(burst, githubtest.CommentEvent(id, "octo/app", "mallory", "try with\n"+leak, at(id)))
			planted = append(planted, id)
		case id == first+40 || id == first+90:
			repo := fmt.Sprintf("octo/svc%d", id)
			base, head := githubtest.SHA(repo+"base"), githubtest.SHA(repo+"head")
			h.gh.AddCommits(repo,
				githubtest.Commit{SHA: base, Message: "init", AuthorLogin: "alice", Date: at(id)},
				githubtest.Commit{SHA: head, Parents: []string{base}, Message: "config", AuthorLogin: "alice", Date: at(id),
					Files: []githubtest.File{{Path: "app/.env", Patch: patchAdding(4, "A=1", leak)}}})
			h.gh.SetBranch(repo, "main", head)
			burst = append(burst, githubtest.PushEvent(id, repo, "alice", "refs/heads/main", base, head, at(id)))
			planted = append(planted, id)
		default:
			burst = append(burst, githubtest.Event(id, "WatchEvent", "octo/other", "bob", at(id), map[string]any{"action": "started"}))
		}
	}
	h.gh.Publish(burst...)
	res, err := h.poller.PollOnce(ctx)
	noErr(t, err)
	isTrue(t, res.Gap, "the burst must overflow the timeline")
	equal(t, int64(100), res.Missed)
	return planted
}

type gapRow struct {
	state            string
	found, processed int64
	note             string
}

func readGap(t *testing.T, h *backfillHarness) gapRow {
	t.Helper()
	var g gapRow
	noErr(t, h.pool.QueryRow(context.Background(),
		`SELECT state, archive_found, archive_processed, note FROM crawl_gaps`).Scan(&g.state, &g.found, &g.processed, &g.note))
	return g
}

func waitGap(t *testing.T, h *backfillHarness, cond func(gapRow) bool) gapRow {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		g := readGap(t, h)
		if cond(g) {
			return g
		}
		if time.Now().After(deadline) {
			rows, _ := h.pool.Query(context.Background(), `SELECT kind, state, COALESCE(errors::text, '') FROM river_job WHERE kind LIKE 'github_archive%'`)
			for rows.Next() {
				var k, s, e string
				_ = rows.Scan(&k, &s, &e)
				t.Logf("job %s %s %s", k, s, e)
			}
			rows.Close()
			t.Fatalf("gap %+v: condition not met in time", g)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBackfillRecoversGap: live polling misses a window holding secrets in
// comments and pushes; once GH Archive publishes the hour, backfill finds
// every one (pushes fetched through compare), the occurrences say via
// archive with their detection lag, the gap ends backfilled with exact
// counts, malformed and oversized lines are counted skips, and live
// coverage for the hour is live over archive.
func TestBackfillRecoversGap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newBackfillHarness(t, nil)
	reg := prometheus.NewRegistry()
	b := h.backfill(t, BackfillConfig{Coverage: true, RetryEvery: 50 * time.Millisecond, MaxLineBytes: 64 << 10, ChunkLines: 64, Registerer: reg})
	rc := h.start(t, b)
	planted := h.plantGap(t, 5000)
	h.gh.AddArchiveLines(h.hour, []byte(`{"id":"broken`), []byte(`not json at all`), bytes.Repeat([]byte("z"), 100<<10))

	// Not yet published: the gap stays open and the job waits.
	h.gh.WithholdArchiveHour(h.hour)
	noErr(t, b.Plan(ctx, rc))
	time.Sleep(300 * time.Millisecond)
	equal(t, "open", readGap(t, h).state)
	greater(t, h.gh.ArchiveRequests(), 0)

	h.gh.ReleaseArchiveHour(h.hour)
	g := waitGap(t, h, func(g gapRow) bool { return g.state != "open" })
	equal(t, gapRow{state: "backfilled", found: 100, processed: 100}, g)

	// Every planted secret was found, via the archive.
	want := map[string]bool{}
	for _, id := range planted {
		want[fmt.Sprint(id)] = true
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := map[string]bool{}
		for _, f := range h.rec.all() {
			equal(t, ViaArchive, f.Via, "finding %s", f.URL)
			got[f.EventID] = true
		}
		if len(got) == len(want) {
			equal(t, want, got)
			break
		}
		isFalse(t, time.Now().After(deadline), "found %v of %v", got, want)
		time.Sleep(20 * time.Millisecond)
	}
	var occ, viaArchive, withLag int
	noErr(t, h.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE via = 'archive'),
			count(*) FILTER (WHERE detected_at - event_at > interval '2 hours')
		FROM occurrences`).Scan(&occ, &viaArchive, &withLag))
	equal(t, 4, occ)
	equal(t, 4, viaArchive)
	equal(t, 4, withLag)
	var incidentID int64
	noErr(t, h.pool.QueryRow(ctx, `SELECT id FROM incidents LIMIT 1`).Scan(&incidentID))
	var orgID int64
	noErr(t, h.pool.QueryRow(ctx, `SELECT org_id FROM incidents LIMIT 1`).Scan(&orgID))
	det, err := h.tee.svc.Get(ctx, orgID, incidentID)
	noErr(t, err)
	notEmpty(t, det.OccurrenceList)
	for _, o := range det.OccurrenceList {
		equal(t, "archive", o.Via)
		notNil(t, o.DetectionLagSeconds)
		greater(t, *o.DetectionLagSeconds, 7200.0)
	}

	// Coverage of the hour: 305 events taken live, 405 in the archive, 3
	// lines skipped. The hour's count is not doubled by the gap's pass.
	noErr(t, b.Plan(ctx, rc))
	cov, err := Coverage(ctx, h.pool, FeedPublic, 24)
	noErr(t, err)
	hasLen(t, cov, 1)
	equal(t, h.hour, cov[0].Hour)
	equal(t, int64(305), cov[0].Live)
	equal(t, int64(405), cov[0].Archive)
	equal(t, int64(3), cov[0].Skipped)
	inDelta(t, 305.0/405, *cov[0].Ratio, 1e-9)
	inDelta(t, 305.0/405, metricValue(t, b.m.coverage.WithLabelValues(FeedPublic)), 1e-9)
	equal(t, 3.0, metricValue(t, b.m.lines.WithLabelValues("skipped")))
	equal(t, 1.0, metricValue(t, b.m.resolved.WithLabelValues(FeedPublic, "backfilled")))

	health, err := NewFeeds(h.pool).Health(ctx, 0)
	noErr(t, err)
	hasLen(t, health.Feeds, 1)
	fh := health.Feeds[0]
	equal(t, int64(1), fh.GapsBackfilled)
	equal(t, "backfilled", fh.RecentGaps[0].State)
	equal(t, int64(100), fh.RecentGaps[0].ArchiveFound)
	notNil(t, fh.LiveCoverageRatio)
	js, err := json.Marshal(fh)
	noErr(t, err)
	contains(t, string(js), `"live_coverage_ratio":0.75308`)
	contains(t, string(js), `"state":"backfilled"`)

	// A second plan reads nothing again.
	reqs := h.gh.ArchiveRequests()
	noErr(t, b.Plan(ctx, rc))
	time.Sleep(200 * time.Millisecond)
	equal(t, reqs, h.gh.ArchiveRequests())
}

// TestBackfillUnrecoverable: an hour GH Archive never publishes leaves its
// gap open until the give-up time, then unrecoverable, with a note.
func TestBackfillUnrecoverable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newBackfillHarness(t, nil)
	now := newClock(time.Now())
	reg := prometheus.NewRegistry()
	b := h.backfill(t, BackfillConfig{GiveUpAfter: 6 * time.Hour, RetryEvery: 50 * time.Millisecond, Now: now.now, Registerer: reg})
	rc := h.start(t, b)
	h.plantGap(t, 7000)
	h.gh.WithholdArchiveHour(h.hour)
	noErr(t, b.Plan(ctx, rc))
	time.Sleep(300 * time.Millisecond)
	equal(t, "open", readGap(t, h).state, "three hours after the hour it is not yet given up")

	now.set(h.hour.Add(7*time.Hour + time.Second))
	g := waitGap(t, h, func(g gapRow) bool { return g.state != "open" })
	equal(t, "unrecoverable", g.state)
	contains(t, g.note, ArchiveFileName(h.hour))
	isZero(t, g.found)
	var state string
	noErr(t, h.pool.QueryRow(ctx, `SELECT state FROM gharchive_hours WHERE hour = $1`, h.hour).Scan(&state))
	equal(t, "missing", state)
	equal(t, 1.0, metricValue(t, b.m.resolved.WithLabelValues(FeedPublic, "unrecoverable")))
	equal(t, 1.0, metricValue(t, b.m.hours.WithLabelValues("missing")))
	health, err := NewFeeds(h.pool).Health(ctx, 0)
	noErr(t, err)
	equal(t, int64(1), health.Feeds[0].GapsUnrecoverable)
	isNil(t, h.rec.all())
}

// TestBackfillWalksBack: a gap whose missed events started in the previous
// hour reads that hour too (the detection hour's file starts inside the
// gap), and no further; a run over its time budget stops after a chunk and
// the next run resumes from the saved offsets; an event GH Archive itself
// lacks is not counted as found.
func TestBackfillWalksBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newBackfillHarness(t, nil)
	// A run stops after its budget and its first chunk, and the next resumes.
	b := h.backfill(t, BackfillConfig{RetryEvery: 50 * time.Millisecond, RunBudget: time.Nanosecond, ChunkLines: 64})
	rc := h.start(t, b)
	// The burst straddles the hour: the first 50 missed events are in the
	// hour before.
	h.hour = h.hour.Add(-50 * time.Second)
	h.pollAt.set(h.hour.Add(50*time.Second + 10*time.Minute))
	planted := h.plantGap(t, 9000)
	// GH Archive missed one of the gap's events itself: the counts say so.
	h.gh.DropFromArchive(9070)
	noErr(t, b.Plan(ctx, rc))
	g := waitGap(t, h, func(g gapRow) bool { return g.state != "open" })
	equal(t, gapRow{state: "backfilled", found: 99, processed: 99}, g)
	var lo, hi time.Time
	noErr(t, h.pool.QueryRow(ctx, `SELECT hour_lo, hour_hi FROM crawl_gaps`).Scan(&lo, &hi))
	next := h.hour.Truncate(time.Hour).Add(time.Hour)
	equal(t, next.Add(-time.Hour), lo.UTC())
	equal(t, next, hi.UTC())
	equal(t, 3, h.gh.ArchiveRequests(), "hour %s in two runs, the hour before in one", ArchiveFileName(next))
	eventually(t, func() bool { return len(h.rec.all()) == len(planted) }, 20*time.Second, 20*time.Millisecond)
}

// gatedArchive serves the archive in two halves: the second waits for open
// (or the client giving up), so a reader can be stopped mid-file.
type gatedArchive struct {
	inner http.Handler
	open  chan struct{}
	once  sync.Once
}

func (g *gatedArchive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	g.inner.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		w.WriteHeader(rec.Code)
		return
	}
	body := rec.Body.Bytes()
	w.WriteHeader(http.StatusOK)
	half := len(body) * 2 / 3
	_, _ = w.Write(body[:half])
	w.(http.Flusher).Flush()
	select {
	case <-g.open:
	case <-r.Context().Done():
		return
	}
	_, _ = w.Write(body[half:])
}

// TestBackfillResumesAfterRestart stops the River client in the middle of
// an hour; a new process (client and Backfill) resumes from the saved line
// offsets: every secret is found, the gap's counts are exact, and the new
// process reads only the lines not saved before.
func TestBackfillResumesAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gate := &gatedArchive{open: make(chan struct{})}
	h := newBackfillHarness(t, gate)
	gate.inner = h.gh.ArchiveHandler()
	// Events large enough that the first part of the file holds many lines.
	b1 := h.backfill(t, BackfillConfig{Coverage: true, ChunkLines: 10, Registerer: prometheus.NewRegistry()})
	rc1 := h.start(t, b1)
	planted := h.plantGap(t, 3000)
	noErr(t, b1.Plan(ctx, rc1))

	var saved int64
	eventually(t, func() bool {
		err := h.pool.QueryRow(ctx, `SELECT line_offset FROM gharchive_hours WHERE hour = $1`, h.hour).Scan(&saved)
		return err == nil && saved >= 100
	}, 20*time.Second, 10*time.Millisecond)
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	noErr(t, rc1.StopAndCancel(stopCtx))
	noErr(t, h.pool.QueryRow(ctx, `SELECT line_offset FROM gharchive_hours WHERE hour = $1`, h.hour).Scan(&saved))
	less(t, saved, int64(405))
	equal(t, "open", readGap(t, h).state)

	close(gate.open)
	reg := prometheus.NewRegistry()
	b2 := h.backfill(t, BackfillConfig{Coverage: true, ChunkLines: 10, Registerer: reg})
	h.start(t, b2)
	g := waitGap(t, h, func(g gapRow) bool { return g.state != "open" })
	equal(t, gapRow{state: "backfilled", found: 100, processed: 100}, g)
	equal(t, float64(405-saved), metricValue(t, b2.m.lines.WithLabelValues("event")), "the new process reads only lines not saved")
	cov, err := Coverage(ctx, h.pool, FeedPublic, 1)
	noErr(t, err)
	equal(t, int64(405), cov[0].Archive)
	eventually(t, func() bool {
		ids := map[string]bool{}
		for _, f := range h.rec.all() {
			ids[f.EventID] = true
		}
		return len(ids) == len(planted)
	}, 20*time.Second, 20*time.Millisecond)
	var jobArgs string
	noErr(t, h.pool.QueryRow(ctx, `SELECT string_agg(args::text, ' ') FROM river_job WHERE kind LIKE 'github_archive%'`).Scan(&jobArgs))
	notContains(t, jobArgs, h.secret)
	notContains(t, jobArgs, "payload")
}

// TestArchiveHandlerServesPublishedHours checks the fake's archive: files
// by hour of created_at, 404 before publication, dropped events left out.
func TestArchiveHandlerServesPublishedHours(t *testing.T) {
	t.Parallel()
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	srv := httptest.NewServer(gh.ArchiveHandler())
	t.Cleanup(srv.Close)
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	gh.Publish(
		githubtest.Event(1, "WatchEvent", "o/r", "a", hour.Add(time.Minute), nil),
		githubtest.Event(2, "WatchEvent", "o/r", "a", hour.Add(2*time.Minute), nil),
		githubtest.Event(3, "WatchEvent", "o/r", "a", hour.Add(61*time.Minute), nil),
	)
	gh.DropFromArchive(2)
	get := func(h time.Time) (int, []string) {
		resp, err := srv.Client().Get(srv.URL + "/" + githubtest.ArchiveFileName(h))
		noErr(t, err)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, nil
		}
		gz, err := gzip.NewReader(resp.Body)
		noErr(t, err)
		body, err := io.ReadAll(gz)
		noErr(t, err)
		return resp.StatusCode, strings.Fields(string(body))
	}
	code, lines := get(hour)
	equal(t, http.StatusOK, code)
	hasLen(t, lines, 1)
	contains(t, lines[0], `"id":"1"`)
	gh.SetArchiveDelay(2 * time.Hour)
	code, _ = get(hour)
	equal(t, http.StatusNotFound, code, "not yet published")
	gh.SetArchiveDelay(0)
	code, _ = get(hour.Add(2 * time.Hour))
	equal(t, http.StatusNotFound, code, "the current hour is not published")
	equal(t, 1, gh.ArchiveEvents(hour.Add(time.Hour)))
}

// TestBackfillGapAttachedMidRead: a second gap in the hour being read is
// attached while the first gap's read is under way; the hour is read again
// for it, and each gap ends backfilled with its own exact counts.
func TestBackfillGapAttachedMidRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gate := &gatedArchive{open: make(chan struct{})}
	h := newBackfillHarness(t, gate)
	gate.inner = h.gh.ArchiveHandler()
	b := h.backfill(t, BackfillConfig{ChunkLines: 10})
	rc := h.start(t, b)
	planted := h.plantGap(t, 3000)
	noErr(t, b.Plan(ctx, rc))
	eventually(t, func() bool {
		var off int64
		err := h.pool.QueryRow(ctx, `SELECT line_offset FROM crawl_gap_hours`).Scan(&off)
		return err == nil && off >= 50
	}, 20*time.Second, 10*time.Millisecond)
	planted = append(planted, h.plantGap(t, 3405)...)
	noErr(t, b.Plan(ctx, rc))
	close(gate.open)
	eventually(t, func() bool {
		var n int
		err := h.pool.QueryRow(ctx, `SELECT count(*) FROM crawl_gaps WHERE state = 'backfilled'`).Scan(&n)
		return err == nil && n == 2
	}, 20*time.Second, 20*time.Millisecond)
	rows, err := h.pool.Query(ctx, `SELECT archive_found, archive_processed FROM crawl_gaps ORDER BY id`)
	noErr(t, err)
	for rows.Next() {
		var found, processed int64
		noErr(t, rows.Scan(&found, &processed))
		equal(t, [2]int64{100, 100}, [2]int64{found, processed})
	}
	noErr(t, rows.Err())
	eventually(t, func() bool {
		ids := map[string]bool{}
		for _, f := range h.rec.all() {
			ids[f.EventID] = true
		}
		return len(ids) == len(planted)
	}, 20*time.Second, 20*time.Millisecond)
}
