package githubtest

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// archive holds what GH Archive would publish of the public timeline: every
// event Publish served, filed by the hour of its created_at, in the order
// served (GH Archive's files are in crawl order).
type archive struct {
	mu       sync.Mutex
	hours    map[time.Time][]json.RawMessage
	ids      map[time.Time][]int64
	extra    map[time.Time][][]byte // raw lines appended to an hour's file
	dropped  map[int64]bool
	withheld map[time.Time]bool
	delay    time.Duration
	now      func() time.Time
	requests int
}

func (a *archive) add(events []json.RawMessage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hours == nil {
		a.hours, a.ids = map[time.Time][]json.RawMessage{}, map[time.Time][]int64{}
	}
	for _, ev := range events {
		var h struct {
			ID        string    `json:"id"`
			CreatedAt time.Time `json:"created_at"`
		}
		if json.Unmarshal(ev, &h) != nil {
			continue
		}
		id, _ := strconv.ParseInt(h.ID, 10, 64)
		hour := h.CreatedAt.UTC().Truncate(time.Hour)
		a.hours[hour] = append(a.hours[hour], ev)
		a.ids[hour] = append(a.ids[hour], id)
	}
}

// ArchiveFileName is GH Archive's name for an hour's file:
// YYYY-MM-DD-H.json.gz, in UTC, the hour without a leading zero.
func ArchiveFileName(hour time.Time) string {
	h := hour.UTC()
	return fmt.Sprintf("%s-%d.json.gz", h.Format("2006-01-02"), h.Hour())
}

// ArchiveHandler serves the public timeline's events as GH Archive does
// (https://data.gharchive.org/YYYY-MM-DD-H.json.gz): one gzip file of JSON
// lines per hour of created_at, published once the hour has ended plus the
// archive delay (SetArchiveDelay), 404 before that or when withheld. Serve
// it on its own server (httptest.NewServer(s.ArchiveHandler())): GH
// Archive is another host, with no rate limit.
func (s *Server) ArchiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := &s.archive
		a.mu.Lock()
		a.requests++
		hour, ok := parseArchiveName(r.URL.Path)
		now := time.Now
		if a.now != nil {
			now = a.now
		}
		if r.Method != http.MethodGet || !ok || a.withheld[hour] || now().Before(hour.Add(time.Hour+a.delay)) {
			a.mu.Unlock()
			http.NotFound(w, r)
			return
		}
		var lines [][]byte
		for i, ev := range a.hours[hour] {
			if !a.dropped[a.ids[hour][i]] {
				lines = append(lines, ev)
			}
		}
		lines = append(lines, a.extra[hour]...)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/gzip")
		gz := gzip.NewWriter(w)
		for _, l := range lines {
			_, _ = gz.Write(l)
			_, _ = gz.Write([]byte{'\n'})
		}
		_ = gz.Close()
	})
}

func parseArchiveName(path string) (time.Time, bool) {
	if len(path) > 0 && path[0] == '/' {
		path = path[1:]
	}
	const suffix = ".json.gz"
	if len(path) < len("2006-01-02-0")+len(suffix) || path[len(path)-len(suffix):] != suffix {
		return time.Time{}, false
	}
	base := path[:len(path)-len(suffix)]
	day, err := time.Parse("2006-01-02", base[:10])
	if err != nil || len(base) < 12 || base[10] != '-' {
		return time.Time{}, false
	}
	h, err := strconv.Atoi(base[11:])
	if err != nil || h < 0 || h > 23 || strconv.Itoa(h) != base[11:] {
		return time.Time{}, false
	}
	return day.Add(time.Duration(h) * time.Hour), true
}

// SetArchiveDelay sets how long after an hour ends its file is published
// (GH Archive: about an hour; default 0).
func (s *Server) SetArchiveDelay(d time.Duration) {
	s.archive.mu.Lock()
	defer s.archive.mu.Unlock()
	s.archive.delay = d
}

// WithholdArchiveHour makes an hour's file 404 (not yet published, or
// never) until ReleaseArchiveHour.
func (s *Server) WithholdArchiveHour(hour time.Time) {
	s.archive.mu.Lock()
	defer s.archive.mu.Unlock()
	if s.archive.withheld == nil {
		s.archive.withheld = map[time.Time]bool{}
	}
	s.archive.withheld[hour.UTC().Truncate(time.Hour)] = true
}

// ReleaseArchiveHour publishes a withheld hour.
func (s *Server) ReleaseArchiveHour(hour time.Time) {
	s.archive.mu.Lock()
	defer s.archive.mu.Unlock()
	delete(s.archive.withheld, hour.UTC().Truncate(time.Hour))
}

// DropFromArchive leaves events out of the archive files, as GH Archive's
// own gaps do (its crawler polls too).
func (s *Server) DropFromArchive(ids ...int64) {
	s.archive.mu.Lock()
	defer s.archive.mu.Unlock()
	if s.archive.dropped == nil {
		s.archive.dropped = map[int64]bool{}
	}
	for _, id := range ids {
		s.archive.dropped[id] = true
	}
}

// AddArchiveLines appends raw lines (malformed or huge, for tests) to an
// hour's file.
func (s *Server) AddArchiveLines(hour time.Time, lines ...[]byte) {
	s.archive.mu.Lock()
	defer s.archive.mu.Unlock()
	if s.archive.extra == nil {
		s.archive.extra = map[time.Time][][]byte{}
	}
	h := hour.UTC().Truncate(time.Hour)
	s.archive.extra[h] = append(s.archive.extra[h], lines...)
}

// ArchiveEvents returns how many events an hour's file holds (dropped ones
// left out, added lines not counted).
func (s *Server) ArchiveEvents(hour time.Time) int {
	s.archive.mu.Lock()
	defer s.archive.mu.Unlock()
	h := hour.UTC().Truncate(time.Hour)
	n := 0
	for _, id := range s.archive.ids[h] {
		if !s.archive.dropped[id] {
			n++
		}
	}
	return n
}

// ArchiveRequests returns how many requests reached the archive.
func (s *Server) ArchiveRequests() int {
	s.archive.mu.Lock()
	defer s.archive.mu.Unlock()
	return s.archive.requests
}
