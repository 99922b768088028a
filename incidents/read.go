package incidents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// Incident is one incident with everything the API shows about it. It never
// holds the secret.
type Incident struct {
	ID               int64      `json:"id"`
	OrgID            int64      `json:"org_id"`
	KeyID            int64      `json:"key_id"`
	KeyName          string     `json:"key_name"`
	Provider         string     `json:"provider"`
	Fingerprint      string     `json:"fingerprint"`
	Phase            Phase      `json:"phase"`
	State            string     `json:"state"`
	Severity         Severity   `json:"severity"`
	Containment      string     `json:"containment"`
	AssigneeID       *int64     `json:"assignee_id"`
	AcknowledgedAt   *time.Time `json:"acknowledged_at"`
	AcknowledgedBy   string     `json:"acknowledged_by"`
	SourceURL        string     `json:"source_url"`
	FirstSeenAt      time.Time  `json:"first_seen_at"`
	LastSeenAt       time.Time  `json:"last_seen_at"`
	IdentifiedAt     time.Time  `json:"identified_at"`
	ContainedAt      *time.Time `json:"contained_at"`
	EradicatedAt     *time.Time `json:"eradicated_at"`
	RecoveredAt      *time.Time `json:"recovered_at"`
	ClosedAt         *time.Time `json:"closed_at"`
	EscalatedAt      *time.Time `json:"escalated_at"`
	Regressions      int        `json:"regressions"`
	ResolutionReason string     `json:"resolution_reason"`
	Review           *Review    `json:"review"`
	Occurrences      int        `json:"occurrences"`
	// Seconds from the leak's event time to detection, from identification
	// to containment and to rotation (nil until known).
	TimeToDetect  *float64 `json:"time_to_detect_seconds"`
	TimeToContain *float64 `json:"time_to_contain_seconds"`
	TimeToRotate  *float64 `json:"time_to_rotate_seconds"`
}

// Event is a timeline entry.
type Event struct {
	ID         int64          `json:"id"`
	At         time.Time      `json:"at"`
	Actor      string         `json:"actor"`
	Kind       string         `json:"kind"`
	FromPhase  string         `json:"from_phase,omitempty"`
	ToPhase    string         `json:"to_phase,omitempty"`
	Details    map[string]any `json:"details"`
	NotifiedAt *time.Time     `json:"notified_at,omitempty"`
}

// Occurrence is one sighting.
type Occurrence struct {
	ID         int64      `json:"id"`
	Source     string     `json:"source"`
	EventType  string     `json:"event_type"`
	URL        string     `json:"url"`
	Repo       string     `json:"repo"`
	Commit     string     `json:"commit"`
	Path       string     `json:"path"`
	Line       int        `json:"line"`
	Column     int        `json:"column"`
	Encoding   string     `json:"encoding"`
	Actor      string     `json:"actor"`
	Preview    string     `json:"preview"`
	Title      string     `json:"title"`
	EventAt    *time.Time `json:"event_at"`
	FetchedAt  *time.Time `json:"fetched_at"`
	DetectedAt time.Time  `json:"detected_at"`
	Private    bool       `json:"private"`
	Reach      *int       `json:"reach"`
	// AfterRotation: the secret seen was one the key had been rotated away
	// from (recorded, no alert).
	AfterRotation bool `json:"after_rotation"`
	// Via is "live" or "archive" (backfilled from GH Archive after a gap);
	// DetectionLagSeconds is event_at → detected_at, hours for archive
	// sightings.
	Via                 string   `json:"via"`
	DetectionLagSeconds *float64 `json:"detection_lag_seconds"`
}

// Delivery is a revocation request and its attempts.
type Delivery struct {
	webhook.Delivery
	AttemptLog []webhook.Attempt `json:"attempt_log"`
}

// Details is an incident with its timeline, occurrences and deliveries.
type Details struct {
	Incident
	Timeline       []Event      `json:"timeline"`
	OccurrenceList []Occurrence `json:"occurrence_list"`
	RevocationLog  []Delivery   `json:"revocation_log"`
}

// incidentColumns are read with scanIncident; the key's name and provider
// come from keys afterwards (withKeys).
const incidentColumns = `
	i.id, i.org_id, i.key_id, i.fingerprint, i.phase, i.state, i.severity, i.containment,
	i.assignee_id, i.acknowledged_at, i.acknowledged_by, i.source_url, i.first_seen_at, i.last_seen_at, i.identified_at,
	i.contained_at, i.eradicated_at, i.recovered_at, i.closed_at, i.escalated_at, i.regressions, i.resolution_reason,
	i.review_root_cause, i.review_leak_vector, i.review_follow_ups,
	(SELECT count(*) FROM occurrences oc WHERE oc.incident_id = i.id),
	(SELECT extract(epoch FROM oc.detected_at - oc.event_at)::float8 FROM occurrences oc WHERE oc.incident_id = i.id ORDER BY oc.id LIMIT 1),
	extract(epoch FROM i.contained_at - i.identified_at)::float8,
	extract(epoch FROM i.eradicated_at - i.identified_at)::float8`

func scanIncident(r pgx.Row) (Incident, error) {
	var in Incident
	var rc, lv, fu string
	err := r.Scan(&in.ID, &in.OrgID, &in.KeyID, &in.Fingerprint, &in.Phase, &in.State, &in.Severity, &in.Containment,
		&in.AssigneeID, &in.AcknowledgedAt, &in.AcknowledgedBy, &in.SourceURL, &in.FirstSeenAt, &in.LastSeenAt, &in.IdentifiedAt,
		&in.ContainedAt, &in.EradicatedAt, &in.RecoveredAt, &in.ClosedAt, &in.EscalatedAt, &in.Regressions, &in.ResolutionReason,
		&rc, &lv, &fu, &in.Occurrences, &in.TimeToDetect, &in.TimeToContain, &in.TimeToRotate)
	if rc != "" || lv != "" || fu != "" {
		in.Review = &Review{RootCause: rc, LeakVector: lv, FollowUps: fu}
	}
	return in, err
}

// withKeys fills in each incident's key name and provider, read from the
// keys package in one query for the whole list.
func withKeys(ctx context.Context, db keys.DBTX, list []Incident) error {
	ids := make([]int64, 0, len(list))
	for _, in := range list {
		ids = append(ids, in.KeyID)
	}
	ks, err := keys.ByIDs(ctx, db, ids)
	if err != nil {
		return err
	}
	for i := range list {
		k := ks[list[i].KeyID]
		list[i].KeyName, list[i].Provider = k.Name, k.Provider
	}
	return nil
}

// ListParams filters and pages List results.
type ListParams struct {
	Phase  Phase  // "" for any
	State  string // "open", "closed" or ""
	Before int64  // cursor: incidents with a smaller id (0: from the newest)
	Limit  int    // 1..200, default 50
}

// ListOrg returns the organisation's incidents, newest first.
func (s *Service) ListOrg(ctx context.Context, orgID int64, p ListParams) ([]Incident, error) {
	if p.Limit <= 0 || p.Limit > 200 {
		p.Limit = 50
	}
	if p.Before <= 0 {
		p.Before = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, `SELECT `+incidentColumns+`
		FROM incidents i
		WHERE i.org_id = $1 AND i.id < $2 AND ($3 = '' OR i.phase = $3) AND ($4 = '' OR i.state = $4)
		ORDER BY i.id DESC LIMIT $5`, orgID, p.Before, string(p.Phase), p.State, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list incidents of org %d: %w", orgID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Incident, error) { return scanIncident(r) })
	if err == nil {
		err = withKeys(ctx, s.pool, out)
	}
	if err != nil {
		return nil, fmt.Errorf("list incidents of org %d: %w", orgID, err)
	}
	return out, nil
}

// Get returns one incident of the organisation with its timeline,
// occurrences and revocation deliveries (every attempt).
func (s *Service) Get(ctx context.Context, orgID, id int64) (Details, error) {
	var d Details
	in, err := scanIncident(s.pool.QueryRow(ctx, `SELECT `+incidentColumns+`
		FROM incidents i WHERE i.id = $1 AND i.org_id = $2`, id, orgID))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("incident %d: %w", id, ErrNotFound)
	}
	if err == nil {
		one := []Incident{in}
		err = withKeys(ctx, s.pool, one)
		in = one[0]
	}
	if err != nil {
		return d, fmt.Errorf("load incident %d: %w", id, err)
	}
	d.Incident = in
	rows, err := s.pool.Query(ctx, `
		SELECT id, at, actor, kind, from_phase, to_phase, details, notified_at
		FROM incident_events WHERE incident_id = $1 ORDER BY id`, id)
	if err != nil {
		return d, fmt.Errorf("load timeline of incident %d: %w", id, err)
	}
	if d.Timeline, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Kind, &e.FromPhase, &e.ToPhase, &e.Details, &e.NotifiedAt)
		return e, err
	}); err != nil {
		return d, fmt.Errorf("load timeline of incident %d: %w", id, err)
	}
	rows, err = s.pool.Query(ctx, `
		SELECT id, source, event_type, url, repo, commit_sha, path, line, col, encoding, actor, preview, title,
			event_at, fetched_at, detected_at, private, reach, after_rotation, via,
			extract(epoch FROM detected_at - event_at)::float8
		FROM occurrences WHERE incident_id = $1 ORDER BY id LIMIT 500`, id)
	if err != nil {
		return d, fmt.Errorf("load occurrences of incident %d: %w", id, err)
	}
	if d.OccurrenceList, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Occurrence, error) {
		var o Occurrence
		err := r.Scan(&o.ID, &o.Source, &o.EventType, &o.URL, &o.Repo, &o.Commit, &o.Path, &o.Line, &o.Column, &o.Encoding, &o.Actor, &o.Preview, &o.Title, &o.EventAt, &o.FetchedAt, &o.DetectedAt, &o.Private, &o.Reach, &o.AfterRotation, &o.Via, &o.DetectionLagSeconds)
		return o, err
	}); err != nil {
		return d, fmt.Errorf("load occurrences of incident %d: %w", id, err)
	}
	dels, err := webhook.DeliveriesForIncident(ctx, s.pool, id)
	if err != nil {
		return d, err
	}
	d.RevocationLog = []Delivery{}
	for _, del := range dels {
		as, err := webhook.Attempts(ctx, s.pool, del.ID)
		if err != nil {
			return d, err
		}
		d.RevocationLog = append(d.RevocationLog, Delivery{Delivery: del, AttemptLog: as})
	}
	return d, nil
}

// Stats are an organisation's figures for the dashboard's charts.
type Stats struct {
	OpenByPhase    map[string]int `json:"open_by_phase"`
	OpenBySeverity map[string]int `json:"open_by_severity"`
	// Over incidents identified in the last Days days.
	Days           int        `json:"days"`
	Opened         int        `json:"opened"`
	Regressions    int        `json:"regressions"`
	ContainP50     *float64   `json:"time_to_contain_p50_seconds"`
	ContainP90     *float64   `json:"time_to_contain_p90_seconds"`
	RotateP50      *float64   `json:"time_to_rotate_p50_seconds"`
	RotateP90      *float64   `json:"time_to_rotate_p90_seconds"`
	DetectP50      *float64   `json:"time_to_detect_p50_seconds"`
	DetectP90      *float64   `json:"time_to_detect_p90_seconds"`
	EscalatedCount int        `json:"escalated"`
	AutoContained  int        `json:"auto_contained"`
	OpenedPerDay   []DayCount `json:"opened_per_day"`
}

// DayCount is a count for one UTC day.
type DayCount struct {
	Day   string `json:"day"` // YYYY-MM-DD
	Count int    `json:"count"`
}

// Stats computes the organisation's figures over the last days days.
func (s *Service) Stats(ctx context.Context, orgID int64, days int) (Stats, error) {
	if days <= 0 || days > 365 {
		days = 30
	}
	st := Stats{OpenByPhase: map[string]int{}, OpenBySeverity: map[string]int{}, Days: days, OpenedPerDay: []DayCount{}}
	rows, err := s.pool.Query(ctx, `SELECT phase, severity, count(*) FROM incidents WHERE org_id = $1 AND state = 'open' GROUP BY 1, 2`, orgID)
	if err != nil {
		return st, fmt.Errorf("incident stats of org %d: %w", orgID, err)
	}
	for rows.Next() {
		var phase, sev string
		var n int
		if err := rows.Scan(&phase, &sev, &n); err != nil {
			rows.Close()
			return st, err
		}
		st.OpenByPhase[phase] += n
		st.OpenBySeverity[sev] += n
	}
	rows.Close()
	since := s.now().Add(-time.Duration(days) * 24 * time.Hour)
	err = s.pool.QueryRow(ctx, `
		SELECT count(*), coalesce(sum(regressions), 0)::int, count(escalated_at)::int,
			(SELECT count(DISTINCT e.incident_id) FROM incident_events e JOIN incidents j ON j.id = e.incident_id
			 WHERE j.org_id = $1 AND j.identified_at >= $2 AND e.to_phase = 'contained' AND e.actor NOT LIKE '%@%' AND e.actor NOT LIKE 'token:%')::int,
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM contained_at - identified_at)),
			percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM contained_at - identified_at)),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM eradicated_at - identified_at)),
			percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM eradicated_at - identified_at)),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM f.detect)),
			percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM f.detect))
		FROM incidents LEFT JOIN LATERAL (
			-- A join, not a subquery in each percentile: one index probe per
			-- incident (10,000 incidents: tens of ms, not a hundred, no JIT).
			SELECT oc.detected_at - oc.event_at AS detect FROM occurrences oc
			WHERE oc.incident_id = incidents.id ORDER BY oc.id LIMIT 1) f ON true
		WHERE org_id = $1 AND identified_at >= $2`, orgID, since).
		Scan(&st.Opened, &st.Regressions, &st.EscalatedCount, &st.AutoContained, &st.ContainP50, &st.ContainP90, &st.RotateP50, &st.RotateP90, &st.DetectP50, &st.DetectP90)
	if err != nil {
		return st, fmt.Errorf("incident stats of org %d: %w", orgID, err)
	}
	rows, err = s.pool.Query(ctx, `
		SELECT to_char(date_trunc('day', first_seen_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD'), count(*)::int
		FROM incidents WHERE org_id = $1 AND identified_at >= $2 GROUP BY 1 ORDER BY 1`, orgID, since)
	if err != nil {
		return st, fmt.Errorf("incident stats of org %d: %w", orgID, err)
	}
	if st.OpenedPerDay, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DayCount, error) {
		var d DayCount
		return d, r.Scan(&d.Day, &d.Count)
	}); err != nil {
		return st, fmt.Errorf("incident stats of org %d: %w", orgID, err)
	}
	return st, nil
}

// WebhookKeys returns the public keys receivers verify Ed25519 signatures
// with (Config.WebhookKeys).
func (s *Service) WebhookKeys() []webhook.PublicKey {
	return append([]webhook.PublicKey{}, s.webhookKeys...)
}
