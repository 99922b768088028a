package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
)

// This file holds what the notifiers (incidents/slack, incidents/eventhooks)
// ask of the incidents tables, so that only this package writes them.

// ResealEscalationSlackURLTx re-encrypts, in tx, every organisation's
// escalation Slack URL under the Service's current key (sealing those
// stored in plaintext) and returns the organisations changed; the Slack
// package's key rotation calls it in its own transaction.
func (s *Service) ResealEscalationSlackURLTx(ctx context.Context, tx pgx.Tx) ([]int64, error) {
	ids, err := secretbox.ResealRows[int64](ctx, tx, s.box,
		`SELECT org_id, escalation_slack_url FROM incident_settings WHERE escalation_slack_url <> '' FOR UPDATE`,
		`UPDATE incident_settings SET escalation_slack_url = $2 WHERE org_id = $1`)
	if err != nil {
		return nil, fmt.Errorf("reseal escalation Slack URLs: %w", err)
	}
	return ids, nil
}

// MarkNotified records that the incident's alert reached its first
// destination (kept from the first time).
func (s *Service) MarkNotified(ctx context.Context, incidentID int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE incidents SET notified_at = coalesce(notified_at, now()) WHERE id = $1`, incidentID); err != nil {
		return fmt.Errorf("mark incident %d notified: %w", incidentID, err)
	}
	return nil
}

// MarkEntryNotified records that a timeline entry was sent (kept from the
// first time).
func (s *Service) MarkEntryNotified(ctx context.Context, eventID int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE incident_events SET notified_at = coalesce(notified_at, now()) WHERE id = $1`, eventID); err != nil {
		return fmt.Errorf("mark timeline entry %d notified: %w", eventID, err)
	}
	return nil
}

// TimelineEntry returns one timeline entry of the incident, for a notifier
// that was told of it; ErrNotFound if it no longer exists.
func (s *Service) TimelineEntry(ctx context.Context, incidentID, eventID int64) (Event, error) {
	var e Event
	var details []byte
	err := s.pool.QueryRow(ctx, `
		SELECT id, kind, actor, from_phase, to_phase, details, at FROM incident_events WHERE id = $1 AND incident_id = $2`,
		eventID, incidentID).Scan(&e.ID, &e.Kind, &e.Actor, &e.FromPhase, &e.ToPhase, &details, &e.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, fmt.Errorf("timeline entry %d of incident %d: %w", eventID, incidentID, ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("load timeline entry %d: %w", eventID, err)
	}
	_ = json.Unmarshal(details, &e.Details)
	return e, nil
}

// PeriodFigures are an organisation's incident figures over a period, for
// the weekly digests.
type PeriodFigures struct {
	Opened, Closed int
	// MedianContain is identified → contained over the incidents
	// contained in the period, MedianRotate identified → eradicated over
	// those rotated in it; nil when there were none.
	MedianContain, MedianRotate *time.Duration
	// OpenNow and UnacknowledgedNow count the open incidents as of now.
	OpenNow, UnacknowledgedNow int
}

// PeriodFigures computes the organisation's figures for [from, to).
func (s *Service) PeriodFigures(ctx context.Context, orgID int64, from, to time.Time) (PeriodFigures, error) {
	var f PeriodFigures
	var contain, rotate *float64
	err := s.pool.QueryRow(ctx, `
		SELECT
			count(*) FILTER (WHERE identified_at >= $2 AND identified_at < $3),
			count(*) FILTER (WHERE closed_at >= $2 AND closed_at < $3),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM contained_at - identified_at))
				FILTER (WHERE contained_at >= $2 AND contained_at < $3),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM eradicated_at - identified_at))
				FILTER (WHERE eradicated_at >= $2 AND eradicated_at < $3),
			count(*) FILTER (WHERE state = 'open'),
			count(*) FILTER (WHERE state = 'open' AND acknowledged_at IS NULL)
		FROM incidents WHERE org_id = $1`, orgID, from, to).
		Scan(&f.Opened, &f.Closed, &contain, &rotate, &f.OpenNow, &f.UnacknowledgedNow)
	if err != nil {
		return f, fmt.Errorf("digest figures of org %d: %w", orgID, err)
	}
	if contain != nil {
		v := time.Duration(*contain * float64(time.Second))
		f.MedianContain = &v
	}
	if rotate != nil {
		v := time.Duration(*rotate * float64(time.Second))
		f.MedianRotate = &v
	}
	return f, nil
}

// KeySeverity is an incident's key name and severity.
type KeySeverity struct {
	KeyName  string
	Severity string
}

// IdentifiedBetween lists the key and severity of the organisation's
// incidents identified in [from, to), oldest first.
func (s *Service) IdentifiedBetween(ctx context.Context, orgID int64, from, to time.Time) ([]KeySeverity, error) {
	type row struct {
		keyID    int64
		severity string
	}
	rows, err := s.pool.Query(ctx, `
		SELECT key_id, severity FROM incidents
		WHERE org_id = $1 AND identified_at >= $2 AND identified_at < $3 ORDER BY id`, orgID, from, to)
	if err != nil {
		return nil, fmt.Errorf("digest incidents of org %d: %w", orgID, err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.keyID, &x.severity)
	})
	if err != nil {
		return nil, fmt.Errorf("digest incidents of org %d: %w", orgID, err)
	}
	ids := make([]int64, 0, len(all))
	for _, x := range all {
		ids = append(ids, x.keyID)
	}
	ks, err := keys.ByIDs(ctx, s.pool, ids)
	if err != nil {
		return nil, err
	}
	out := make([]KeySeverity, 0, len(all))
	for _, x := range all {
		if k, ok := ks[x.keyID]; ok {
			out = append(out, KeySeverity{KeyName: k.Name, Severity: x.severity})
		}
	}
	return out, nil
}

// AlertView is what a notifier shows of an incident, read in one snapshot:
// the incident, its key, organisation and assignee, its first sighting and
// how many there are.
type AlertView struct {
	IncidentID, OrgID       int64
	OrgName, KeyName        string
	Provider, Environment   string
	Severity, Phase         string
	AssigneeID              *int64 // nil when unassigned
	AckBy                   string
	Source, URL, Repo, Path string // of the first sighting
	Line                    int
	Actor, Preview          string
	EventAt                 *time.Time
	DetectedAt              time.Time
	Occurrences             int
}

// AlertView reads the incident for a notifier; ErrNotFound if it no
// longer exists.
func (s *Service) AlertView(ctx context.Context, incidentID int64) (AlertView, error) {
	var v AlertView
	var keyID int64
	err := s.pool.QueryRow(ctx, `
		SELECT i.id, i.org_id, i.key_id, i.severity, i.phase, i.assignee_id, i.acknowledged_by,
			oc.source, oc.url, oc.repo, oc.path, oc.line, oc.actor, oc.preview, oc.event_at, oc.detected_at,
			(SELECT count(*) FROM occurrences WHERE incident_id = i.id)
		FROM incidents i
		JOIN LATERAL (SELECT * FROM occurrences WHERE incident_id = i.id ORDER BY id LIMIT 1) oc ON true
		WHERE i.id = $1`, incidentID).
		Scan(&v.IncidentID, &v.OrgID, &keyID, &v.Severity, &v.Phase, &v.AssigneeID, &v.AckBy,
			&v.Source, &v.URL, &v.Repo, &v.Path, &v.Line, &v.Actor, &v.Preview, &v.EventAt, &v.DetectedAt, &v.Occurrences)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("incident %d: %w", incidentID, ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("load incident %d: %w", incidentID, err)
	}
	k, err := keys.Get(ctx, s.pool, keyID)
	if errors.Is(err, keys.ErrNotFound) {
		return v, fmt.Errorf("key of incident %d: %w", incidentID, ErrNotFound)
	}
	if err != nil {
		return v, err
	}
	v.KeyName, v.Provider, v.Environment = k.Name, k.Provider, k.Environment
	names, err := orgs.Names(ctx, s.pool, []int64{v.OrgID})
	if err != nil {
		return v, err
	}
	v.OrgName = names[v.OrgID]
	return v, nil
}

// Snapshot is what an event webhook says of an incident: the incident, its
// key (never the secret) and one sighting.
type Snapshot struct {
	IncidentID, OrgID int64
	Severity, Phase   string
	KeyID             int64
	KeyName           string
	Provider          string
	Environment       string
	Fingerprint       string // the incident's
	Sighting          Sighting
}

// Sighting is where a key was seen; every field is attacker-controlled.
type Sighting struct {
	Source, URL, Repo, Path string
	Line                    int
	Actor                   string
	EventAt                 *time.Time
	DetectedAt              time.Time
}

// EntrySnapshot returns a timeline entry with its incident and the
// incident's first sighting; ErrNotFound if the entry no longer exists.
func (s *Service) EntrySnapshot(ctx context.Context, eventID int64) (Snapshot, Event, error) {
	var sn Snapshot
	var e Event
	var details []byte
	err := s.pool.QueryRow(ctx, `
		SELECT i.id, i.org_id, i.severity, i.phase, e.id, e.from_phase, e.to_phase, e.kind, e.actor, e.details, e.at,
			i.key_id, i.fingerprint,
			oc.source, oc.url, oc.repo, oc.path, oc.line, oc.actor, oc.event_at, oc.detected_at
		FROM incident_events e JOIN incidents i ON i.id = e.incident_id
		JOIN LATERAL (SELECT * FROM occurrences WHERE incident_id = i.id ORDER BY id LIMIT 1) oc ON true
		WHERE e.id = $1`, eventID).
		Scan(&sn.IncidentID, &sn.OrgID, &sn.Severity, &sn.Phase, &e.ID, &e.FromPhase, &e.ToPhase, &e.Kind, &e.Actor, &details, &e.At,
			&sn.KeyID, &sn.Fingerprint,
			&sn.Sighting.Source, &sn.Sighting.URL, &sn.Sighting.Repo, &sn.Sighting.Path, &sn.Sighting.Line, &sn.Sighting.Actor,
			&sn.Sighting.EventAt, &sn.Sighting.DetectedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return sn, e, fmt.Errorf("timeline entry %d: %w", eventID, ErrNotFound)
	}
	if err != nil {
		return sn, e, fmt.Errorf("load timeline entry %d: %w", eventID, err)
	}
	_ = json.Unmarshal(details, &e.Details)
	if err := s.nameKey(ctx, &sn); err != nil {
		return sn, e, err
	}
	return sn, e, nil
}

// OccurrenceSnapshot returns a sighting with its incident; ErrNotFound if
// it no longer exists.
func (s *Service) OccurrenceSnapshot(ctx context.Context, occurrenceID int64) (Snapshot, error) {
	var sn Snapshot
	err := s.pool.QueryRow(ctx, `
		SELECT i.id, i.org_id, i.severity, i.phase, i.key_id, i.fingerprint,
			oc.source, oc.url, oc.repo, oc.path, oc.line, oc.actor, oc.event_at, oc.detected_at
		FROM occurrences oc JOIN incidents i ON i.id = oc.incident_id
		WHERE oc.id = $1`, occurrenceID).
		Scan(&sn.IncidentID, &sn.OrgID, &sn.Severity, &sn.Phase, &sn.KeyID, &sn.Fingerprint,
			&sn.Sighting.Source, &sn.Sighting.URL, &sn.Sighting.Repo, &sn.Sighting.Path, &sn.Sighting.Line, &sn.Sighting.Actor,
			&sn.Sighting.EventAt, &sn.Sighting.DetectedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return sn, fmt.Errorf("occurrence %d: %w", occurrenceID, ErrNotFound)
	}
	if err != nil {
		return sn, fmt.Errorf("load occurrence %d: %w", occurrenceID, err)
	}
	if err := s.nameKey(ctx, &sn); err != nil {
		return sn, err
	}
	return sn, nil
}

// nameKey fills in the snapshot's key names from the registry; a key
// deleted meanwhile is ErrNotFound, as its incident would be.
func (s *Service) nameKey(ctx context.Context, sn *Snapshot) error {
	k, err := keys.Get(ctx, s.pool, sn.KeyID)
	if errors.Is(err, keys.ErrNotFound) {
		return fmt.Errorf("key %d: %w", sn.KeyID, ErrNotFound)
	}
	if err != nil {
		return err
	}
	sn.KeyName, sn.Provider, sn.Environment = k.Name, k.Provider, k.Environment
	return nil
}
