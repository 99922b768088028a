package paste

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Health states of a source.
const (
	// StatePending: configured, not listed yet.
	StatePending = "pending"
	// StateOK: the last listing succeeded and nothing went wrong recently.
	StateOK = "ok"
	// StateDegraded: reading, but with recent trouble: a failed listing,
	// fetch errors, skipped malformed pastes, a gap, or pastes listed over
	// 15 minutes ago and still not fetched.
	StateDegraded = "degraded"
	// StateUnauthorised: the site refused us (e.g. Pastebin's scraping API
	// from an IP that is not whitelisted). Nothing is being read.
	StateUnauthorised = "unauthorised"
	// StateFailing: listings keep failing, or no listing succeeded for
	// three intervals (no process is polling). Nothing is being read.
	StateFailing = "failing"
)

// States lists every state, for metrics.
var States = []string{StatePending, StateOK, StateDegraded, StateUnauthorised, StateFailing}

// HealthWindow is how far back "recent" reaches: items per minute, lag and
// recent trouble are measured over it.
const HealthWindow = 15 * time.Minute

// failingAfter is how many consecutive failed listings make a source failing.
const failingAfter = 3

// Health is one source's health.
type Health struct {
	Source              string     `json:"source"`
	Kind                string     `json:"kind"`
	State               string     `json:"state"`
	PollInterval        float64    `json:"poll_interval_seconds"`
	LastPollAt          *time.Time `json:"last_poll_at"`
	LastSuccessAt       *time.Time `json:"last_success_at"`
	LastError           string     `json:"last_error,omitempty"`
	LastErrorAt         *time.Time `json:"last_error_at"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastPasteAt         *time.Time `json:"last_paste_at"`
	ItemsPerMinute      float64    `json:"items_per_minute"` // scanned, over HealthWindow
	Queued              int64      `json:"queued"`           // listed, not yet fetched
	OldestQueuedAt      *time.Time `json:"oldest_queued_at"` // when the longest-waiting of them was listed
	Listed              int64      `json:"listed_total"`
	FetchErrors         int64      `json:"fetch_errors_total"`
	LastFetchErrorAt    *time.Time `json:"last_fetch_error_at"`
	Deleted             int64      `json:"deleted_total"`
	Skipped             int64      `json:"skipped_total"`
	Failed              int64      `json:"failed_total"`
	Gaps                int64      `json:"gaps_total"`
	GapEstimate         int64      `json:"gap_estimate_total"` // pastes probably missed
	LastGapAt           *time.Time `json:"last_gap_at"`
	LagSeconds          float64    `json:"lag_seconds"`     // mean paste date → scanned, over HealthWindow
	LagMaxSeconds       float64    `json:"lag_max_seconds"` // worst over HealthWindow

	unauthorised bool
	lastSkipAt   *time.Time
}

// Health returns every source's health, by name.
func (s *Store) Health(ctx context.Context) ([]Health, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT s.name, s.kind, s.poll_interval_s, s.last_poll_at, s.last_success_at, s.last_error,
			s.last_error_at, s.consecutive_failures, s.unauthorised, s.last_paste_at, s.listed_total,
			s.fetch_errors_total, s.last_fetch_error_at, s.deleted_total, s.skipped_total, s.last_skip_at,
			s.gaps_total, s.gap_estimate_total, s.last_gap_at,
			COALESCE(i.scanned, 0), COALESCE(i.lag, 0), COALESCE(i.lag_max, 0),
			COALESCE(q.queued, 0), COALESCE(q.failed, 0), q.oldest_queued
		FROM paste_sources s
		LEFT JOIN LATERAL (
			SELECT count(*) AS scanned,
				avg(EXTRACT(EPOCH FROM done_at - paste_at)) FILTER (WHERE paste_at IS NOT NULL) AS lag,
				max(EXTRACT(EPOCH FROM done_at - paste_at)) FILTER (WHERE paste_at IS NOT NULL) AS lag_max
			FROM paste_items
			WHERE source = s.name AND status = 'scanned' AND done_at > now() - make_interval(secs => $1)
		) i ON true
		LEFT JOIN LATERAL (
			SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
				count(*) FILTER (WHERE status = 'failed') AS failed,
				min(listed_at) FILTER (WHERE status = 'queued') AS oldest_queued
			FROM paste_items WHERE source = s.name AND status IN ('queued', 'failed')
		) q ON true
		ORDER BY s.name`, HealthWindow.Seconds())
	if err != nil {
		return nil, fmt.Errorf("read paste source health: %w", err)
	}
	defer rows.Close()
	var out []Health
	now := time.Now()
	for rows.Next() {
		var h Health
		var interval int
		var scanned int64
		if err := rows.Scan(&h.Source, &h.Kind, &interval, &h.LastPollAt, &h.LastSuccessAt, &h.LastError,
			&h.LastErrorAt, &h.ConsecutiveFailures, &h.unauthorised, &h.LastPasteAt, &h.Listed,
			&h.FetchErrors, &h.LastFetchErrorAt, &h.Deleted, &h.Skipped, &h.lastSkipAt,
			&h.Gaps, &h.GapEstimate, &h.LastGapAt,
			&scanned, &h.LagSeconds, &h.LagMaxSeconds, &h.Queued, &h.Failed, &h.OldestQueuedAt); err != nil {
			return nil, fmt.Errorf("read paste source health: %w", err)
		}
		h.PollInterval = float64(interval)
		h.ItemsPerMinute = float64(scanned) / HealthWindow.Minutes()
		h.State = h.state(now)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read paste source health: %w", err)
	}
	return out, nil
}

// state derives the state from the counters.
func (h *Health) state(now time.Time) string {
	recent := func(t *time.Time) bool { return t != nil && now.Sub(*t) < HealthWindow }
	interval := time.Duration(h.PollInterval * float64(time.Second))
	switch {
	case h.LastPollAt == nil:
		return StatePending
	case h.unauthorised:
		return StateUnauthorised
	case h.ConsecutiveFailures >= failingAfter, h.LastSuccessAt == nil:
		return StateFailing
	case now.Sub(*h.LastSuccessAt) > 3*interval+time.Minute:
		return StateFailing // nobody is polling it
	case h.ConsecutiveFailures > 0, recent(h.LastFetchErrorAt), recent(h.LastGapAt), recent(h.lastSkipAt):
		return StateDegraded
	case h.OldestQueuedAt != nil && !recent(h.OldestQueuedAt):
		return StateDegraded // listed but not fetched: fetching has stalled
	}
	return StateOK
}

// Collector exports source health to Prometheus, read from the database at
// each scrape so every process reports the same truth. A failed read fails
// the scrape rather than reporting nothing.
type Collector struct {
	store *Store
	descs map[string]*prometheus.Desc
}

// NewCollector returns a Collector; register it on the process's registry.
func NewCollector(s *Store) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("leakwatch_paste_source_"+name, help, append([]string{"source"}, labels...), nil)
	}
	return &Collector{store: s, descs: map[string]*prometheus.Desc{
		"state":        d("state", "1 for the source's current state (pending, ok, degraded, unauthorised, failing), 0 for the others.", "kind", "state"),
		"last_success": d("last_success_timestamp_seconds", "When the source was last listed successfully (0: never)."),
		"items":        d("items_per_minute", "Pastes scanned per minute over the last 15 minutes."),
		"queued":       d("queued", "Pastes listed and waiting to be fetched."),
		"lag":          d("lag_seconds", "Mean time from paste date to scan over the last 15 minutes."),
		"listed":       d("listed_total", "New pastes listed."),
		"fetch_errors": d("fetch_errors_total", "Failed fetch attempts."),
		"deleted":      d("deleted_total", "Pastes deleted before they could be fetched."),
		"skipped":      d("skipped_total", "Malformed listing entries and pastes skipped."),
		"failed":       d("failed_total", "Pastes whose fetch retries ran out."),
		"gaps":         d("gaps_total", "Listings whose items were all new (pastes missed between polls)."),
		"gap_estimate": d("gap_estimate_total", "Estimated pastes missed in gaps."),
	}}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs, err := c.store.Health(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.descs["state"], err)
		return
	}
	for _, h := range hs {
		for _, st := range States {
			v := 0.0
			if st == h.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.descs["state"], prometheus.GaugeValue, v, h.Source, h.Kind, st)
		}
		last := 0.0
		if h.LastSuccessAt != nil {
			last = float64(h.LastSuccessAt.Unix())
		}
		g := func(name string, v float64) {
			ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, h.Source)
		}
		n := func(name string, v int64) {
			ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), h.Source)
		}
		g("last_success", last)
		g("items", h.ItemsPerMinute)
		g("queued", float64(h.Queued))
		g("lag", h.LagSeconds)
		n("listed", h.Listed)
		n("fetch_errors", h.FetchErrors)
		n("deleted", h.Deleted)
		n("skipped", h.Skipped)
		n("failed", h.Failed)
		n("gaps", h.Gaps)
		n("gap_estimate", h.GapEstimate)
	}
}
