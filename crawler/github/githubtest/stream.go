package githubtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"
)

// StreamOpts configures a Stream.
type StreamOpts struct {
	// Rate is how many events per second the stream publishes (GitHub's
	// public stream runs at 50–100).
	Rate float64
	// Path is the timeline it publishes to (default PublicEvents).
	Path string
	// FirstID is the first event id (default 40,000,000,000, about where
	// GitHub's ids were in 2024). Ids are dense: each event is the previous
	// plus one, so a test can tell exactly which were missed.
	FirstID int64
	// PushShare is the share of pushes (default 0.5, as on GitHub; the
	// recorded sample has 53%).
	PushShare float64
	// Make, when set, builds every event instead of the recorded templates.
	Make EventFunc
	// Seed makes the mix reproducible (default 1).
	Seed uint64
}

// EventFunc builds a real-format event with the given id and created_at.
type EventFunc func(id int64, at time.Time) json.RawMessage

// ServedEvent is an event the fake put on a timeline.
type ServedEvent struct {
	ID        int64
	Type      string
	CreatedAt time.Time
	// Planted marks events given through Stream.Plant or PlantAt.
	Planted bool
	// Raw is the event as served; kept only after KeepServedRaw(true).
	Raw json.RawMessage
}

// Stream publishes events to a timeline at a steady rate, built from the
// recorded GH Archive events with fresh dense ids and created_at, while
// pollers read it: pages shift between requests exactly as GitHub's do.
type Stream struct {
	s    *Server
	opts StreamOpts
	rng  *rand.Rand

	mu      sync.Mutex
	next    int64
	planted []plant
	stop    chan struct{}
	done    chan struct{}
	pushes  []map[string]json.RawMessage
	others  []map[string]json.RawMessage
}

type plant struct {
	at   time.Time
	make EventFunc
}

// StartStream starts publishing. Stop it when done (Close does too).
func (s *Server) StartStream(opts StreamOpts) (*Stream, error) {
	if opts.Rate <= 0 {
		return nil, fmt.Errorf("stream rate %v: want events per second > 0", opts.Rate)
	}
	if opts.Path == "" {
		opts.Path = PublicEvents
	}
	if opts.FirstID == 0 {
		opts.FirstID = 40_000_000_000
	}
	if opts.PushShare == 0 {
		opts.PushShare = 0.5
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	st := &Stream{s: s, opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 7)), next: opts.FirstID,
		stop: make(chan struct{}), done: make(chan struct{})}
	if opts.Make == nil {
		t, err := recordedTemplates()
		if err != nil {
			return nil, err
		}
		st.pushes, st.others = t.pushes, t.others
	}
	s.mu.Lock()
	s.streams = append(s.streams, st)
	s.mu.Unlock()
	go st.run()
	return st, nil
}

// Plant publishes an event built by make with the stream's next id, at its
// next tick.
func (st *Stream) Plant(make EventFunc) { st.PlantAt(time.Time{}, make) }

// PlantAt publishes an event built by make with the stream's next id once
// at has come.
func (st *Stream) PlantAt(at time.Time, make EventFunc) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.planted = append(st.planted, plant{at: at, make: make})
}

// Stop stops publishing and waits for the last tick.
func (st *Stream) Stop() {
	st.mu.Lock()
	select {
	case <-st.stop:
	default:
		close(st.stop)
	}
	st.mu.Unlock()
	<-st.done
}

// NextID returns the id the next event will get.
func (st *Stream) NextID() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.next
}

// run publishes in ticks of 5 ms, as many events as the rate asks for.
func (st *Stream) run() {
	defer close(st.done)
	const tick = 5 * time.Millisecond
	tk := time.NewTicker(tick)
	defer tk.Stop()
	start := time.Now()
	var sent int64
	for {
		select {
		case <-st.stop:
			return
		case <-tk.C:
		}
		now := time.Now()
		due := int64(st.opts.Rate * now.Sub(start).Seconds())
		evs, served := st.make(now, int(due-sent))
		sent = max(sent, due)
		if len(evs) > 0 {
			st.s.publish(st.opts.Path, evs, served)
		}
	}
}

// make builds n stream events plus the planted ones that are due, oldest
// first.
func (st *Stream) make(now time.Time, n int) ([]json.RawMessage, []ServedEvent) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var evs []json.RawMessage
	var served []ServedEvent
	add := func(raw json.RawMessage, planted bool) {
		evs = append(evs, raw)
		served = append(served, ServedEvent{ID: st.next, CreatedAt: now.UTC().Truncate(time.Second), Planted: planted})
		st.next++
	}
	// Planted events go in among the others, so they are served like any.
	var keep []plant
	for _, p := range st.planted {
		if p.at.After(now) {
			keep = append(keep, p)
			continue
		}
		add(p.make(st.next, now), true)
	}
	st.planted = keep
	for range n {
		raw, typ := st.event(st.next, now)
		add(raw, false)
		served[len(served)-1].Type = typ
	}
	return evs, served
}

func (st *Stream) event(id int64, at time.Time) (json.RawMessage, string) {
	if st.opts.Make != nil {
		return st.opts.Make(id, at), ""
	}
	set := st.others
	if st.rng.Float64() < st.opts.PushShare {
		set = st.pushes
	}
	tmpl := set[st.rng.IntN(len(set))]
	m := make(map[string]json.RawMessage, len(tmpl))
	for k, v := range tmpl {
		m[k] = v
	}
	m["id"] = json.RawMessage(strconv.Quote(strconv.FormatInt(id, 10)))
	m["created_at"] = json.RawMessage(`"` + at.UTC().Format(time.RFC3339) + `"`)
	raw, err := json.Marshal(m)
	if err != nil {
		panic(err) // the templates are valid JSON
	}
	typ, _ := strconv.Unquote(string(tmpl["type"]))
	return raw, typ
}

type templates struct{ pushes, others []map[string]json.RawMessage }

// recordedTemplates splits the recorded events once into pushes and the
// rest; streams copy a template before changing it.
var recordedTemplates = sync.OnceValues(func() (templates, error) {
	var t templates
	recorded, err := Recorded()
	if err != nil {
		return t, err
	}
	for _, raw := range recorded {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return t, fmt.Errorf("recorded event: %w", err)
		}
		if string(m["type"]) == `"PushEvent"` {
			t.pushes = append(t.pushes, m)
		} else {
			t.others = append(t.others, m)
		}
	}
	return t, nil
})

// KeepServedRaw makes Served keep each event's JSON (for tests that build
// archive files from what was served); off by default to bound memory.
func (s *Server) KeepServedRaw(keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keepRaw = keep
}

// Served returns every event put on the timeline at path (PublicEvents when
// empty), by Publish, PublishTo or a Stream, in id order.
func (s *Server) Served(path string) []ServedEvent {
	if path == "" {
		path = PublicEvents
	}
	s.mu.RLock()
	out := append([]ServedEvent(nil), s.served[path]...)
	s.mu.RUnlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// publish puts events (oldest first) on a timeline and records them.
func (s *Server) publish(path string, events []json.RawMessage, served []ServedEvent) {
	if path == PublicEvents {
		s.archive.add(events) // the hour files hold what the timeline served
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tl := s.timelines[path]
	// Prepend in one allocation: newest first.
	n := len(events)
	out := make([]json.RawMessage, 0, min(n+len(tl), TimelineMax))
	for i := n - 1; i >= 0 && len(out) < TimelineMax; i-- {
		out = append(out, events[i])
	}
	for _, ev := range tl {
		if len(out) >= TimelineMax {
			break
		}
		out = append(out, ev)
	}
	s.timelines[path] = out
	for i := range served {
		if served[i].Type == "" {
			var h struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(events[i], &h)
			served[i].Type = h.Type
		}
		if s.keepRaw {
			served[i].Raw = events[i]
		}
	}
	s.served[path] = append(s.served[path], served...)
}

// servedOf reads the id, type and created_at of published events.
func servedOf(events []json.RawMessage) []ServedEvent {
	out := make([]ServedEvent, len(events))
	for i, raw := range events {
		var h struct {
			ID        string    `json:"id"`
			Type      string    `json:"type"`
			CreatedAt time.Time `json:"created_at"`
		}
		_ = json.Unmarshal(raw, &h)
		id, _ := strconv.ParseInt(h.ID, 10, 64)
		out[i] = ServedEvent{ID: id, Type: h.Type, CreatedAt: h.CreatedAt}
	}
	return out
}
