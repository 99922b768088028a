package github

import (
	"slices"
	"sync"
	"time"
)

// Poll modes.
const (
	// PollAdaptive probes page 1 with a conditional request on a short
	// cadence set by the stream's rate, as GH Archive's crawler polls every
	// 0.75–1.75 s whatever GitHub asks.
	PollAdaptive = "adaptive"
	// PollObey waits GitHub's X-Poll-Interval (60 s on /events) between
	// polls: at 50–100 events/s a 300-event window then covers about 5% of
	// the stream.
	PollObey = "obey"
)

// pageSize is GitHub's largest events page.
const pageSize = 100

// Adaptive cadence bounds. The public feed is probed at most every 250 ms
// (what GH Archive's users proposed in 2025) and at least every 2 s, so a
// stream that wakes up cannot outrun the 300-event window before the next
// probe. Watched feeds are small: 304s are free but GitHub still asks for
// restraint.
const (
	publicMinPeriod  = 250 * time.Millisecond
	publicMaxPeriod  = 2 * time.Second
	watchedMinPeriod = 2 * time.Second
	watchedMaxPeriod = time.Minute
	// pageFill is the share of page 1 a poll aims to find new: the rest
	// overlaps the last poll, proving nothing was skipped, and leaves room
	// for bursts before page 2 is needed.
	pageFill = 0.6
	// backoffMax caps the doubling backoff of a failing feed.
	backoffMax = time.Minute
)

// PollBudgetShareDefault is the share of the token pool's hourly budget
// polling may spend (200s; 304s are free). The rest is for fetching what
// events point at: every push costs at least one compare request, and half
// the public stream is pushes, so pushes need far more than polling.
const PollBudgetShareDefault = 0.15

// span is a closed range of event ids seen complete: a page is a slice of
// the timeline, and GitHub never adds an event with an id lower than one it
// already serves, so no event in [lo, hi] was left out.
type span struct{ lo, hi int64 }

// hole is a stretch of ids (after, before), both exclusive, that no page
// covered: events there were missed.
type hole struct {
	after, before int64
}

func (h hole) missed() int64 { return max(h.before-h.after-1, 0) }

// coverage merges the spans of a poll's pages with the checkpoint (every id
// up to lastID is already accounted for; 0: first poll) and returns the
// holes left, oldest first. Touching spans (hi+1 == lo) merge: ids are
// dense on the fake and, on GitHub, a page's neighbour overlaps it unless
// the timeline stood still (see Poller.confirmStill).
func coverage(lastID int64, spans []span) []hole {
	if len(spans) == 0 {
		return nil
	}
	s := slices.Clone(spans)
	slices.SortFunc(s, func(a, b span) int {
		if a.lo != b.lo {
			if a.lo < b.lo {
				return -1
			}
			return 1
		}
		return 0
	})
	var holes []hole
	top := lastID
	if lastID == 0 {
		top = s[0].lo - 1
	}
	for _, sp := range s {
		if sp.lo > top+1 {
			holes = append(holes, hole{after: top, before: sp.lo})
		}
		top = max(top, sp.hi)
	}
	return holes
}

// recentIDs remembers the ids of recently queued events in bounded memory,
// so a poll drops events it already queued even when GitHub serves an
// event late, below the checkpoint. Ids at or below floor (the largest id
// forgotten, or the checkpoint after a restart) count as seen.
type recentIDs struct {
	ring  []int64
	next  int
	set   map[int64]struct{}
	floor int64
}

const recentCap = 8192

func newRecentIDs(floor int64) *recentIDs {
	return &recentIDs{ring: make([]int64, 0, recentCap), set: make(map[int64]struct{}, recentCap), floor: floor}
}

// seen reports whether id was queued (or is too old to tell).
func (r *recentIDs) seen(id int64) bool {
	if id <= r.floor {
		return true
	}
	_, ok := r.set[id]
	return ok
}

func (r *recentIDs) add(id int64) {
	if r.seen(id) {
		return
	}
	if len(r.ring) < recentCap {
		r.ring = append(r.ring, id)
	} else {
		old := r.ring[r.next]
		delete(r.set, old)
		r.floor = max(r.floor, old)
		r.ring[r.next] = id
		r.next = (r.next + 1) % recentCap
	}
	r.set[id] = struct{}{}
}

// pollBudget is a token bucket of charged requests polling may send: a
// share of the pool's hourly budget, refilled continuously. A poll spends
// after the fact (it cannot know beforehand whether GitHub answers 304),
// so the level may dip below zero; the next poll then waits.
type pollBudget struct {
	mu      sync.Mutex
	perHour func() float64 // follows the limits GitHub reports
	perSec  float64
	level   float64
	last    time.Time
}

func newPollBudget(perHour func() float64, now time.Time) *pollBudget {
	b := &pollBudget{perHour: perHour, last: now}
	b.perSec = perHour() / 3600
	b.level = b.burst()
	return b
}

// burst lets ten seconds of budget go at once (a first poll reads three
// pages; a stream that wakes up needs a few polls in quick succession).
func (b *pollBudget) burst() float64 { return max(b.perSec*10, 5) }

func (b *pollBudget) refill(now time.Time) {
	b.perSec = b.perHour() / 3600
	if now.After(b.last) {
		b.level = min(b.burst(), b.level+now.Sub(b.last).Seconds()*b.perSec)
		b.last = now
	}
}

// wait returns how long until a poll may be sent.
func (b *pollBudget) wait(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if b.level >= 1 || b.perSec <= 0 {
		return 0
	}
	return time.Duration((1 - b.level) / b.perSec * float64(time.Second))
}

func (b *pollBudget) spend(now time.Time, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.level -= float64(n)
}

// feedState is the poller's memory of one feed between polls.
type feedState struct {
	recent    *recentIDs
	period    time.Duration // adaptive: current period
	rate      float64       // adaptive: events/s, smoothed
	lastStart time.Time
	next      time.Time // when the next poll is due (zero: now)
	failures  int
}

// cadence decides when a feed is polled next.
type cadence struct {
	mode     string
	min, max time.Duration
}

// after updates st from a poll that started at start and returns the time
// until the next poll, measured from the poll's start (so a slow poll does
// not stretch the period). A failure backs off from 1 s, doubling, up to
// backoffMax (or until the rate limit lifts).
func (c cadence) after(st *feedState, start time.Time, res PollResult, err error, limitedUntil time.Time) time.Duration {
	prev := st.lastStart
	st.lastStart = start
	if err != nil {
		st.failures++
		d := min(time.Second<<min(st.failures-1, 10), backoffMax)
		if u := limitedUntil.Sub(start); u > d {
			d = u
		}
		return d
	}
	st.failures = 0
	if c.mode == PollObey {
		iv := res.Interval
		if iv <= 0 {
			iv = time.Minute
		}
		return clampPeriod(iv, 0, c.max)
	}
	if st.period == 0 {
		st.period = c.min
	}
	switch {
	case res.NotModified:
		// Nothing new: slow down gently; a 304 costs no budget, so the
		// only reason is restraint.
		st.period = clampPeriod(st.period*5/4, c.min, c.max)
	default:
		n := float64(res.Events) + float64(res.Missed)
		if !prev.IsZero() {
			if e := start.Sub(prev).Seconds(); e > 0 {
				sample := n / e
				if st.rate == 0 {
					st.rate = sample
				} else {
					st.rate = 0.7*st.rate + 0.3*sample
				}
			}
		}
		// Until the rate is known (two polls), probe as fast as allowed:
		// the stream may already be running at full speed.
		target := c.min
		if st.rate > 0 {
			target = time.Duration(pageFill * pageSize / st.rate * float64(time.Second))
		}
		if res.Gap || res.Pages > 1 {
			// The overlap with the last poll was gone: catch up at once.
			target = min(target, st.period/2)
		}
		st.period = clampPeriod(target, c.min, c.max)
	}
	return st.period
}

// clampPeriod bounds d to [lo, hi]; hi wins when they cross (a test's
// MinInterval below the adaptive floor).
func clampPeriod(d, lo, hi time.Duration) time.Duration {
	if d < lo {
		d = lo
	}
	if hi > 0 && d > hi {
		d = hi
	}
	return d
}
