package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Phase is where an incident stands in the response.
type Phase string

// The phases, in order, and the side exits.
const (
	PhaseIdentified    Phase = "identified"     // verified against the registry; severity, owner and assignee set
	PhaseContained     Phase = "contained"      // the secret is revoked or disabled
	PhaseEradicated    Phase = "eradicated"     // a new secret replaced it (the key was rotated)
	PhaseRecovered     Phase = "recovered"      // systems run on the new secret
	PhaseClosed        Phase = "closed"         // with a post-incident review
	PhaseFalsePositive Phase = "false_positive" // not a real exposure
	PhaseAcceptedRisk  Phase = "accepted_risk"  // a reason is recorded
)

// Open reports whether the incident still needs work.
func (p Phase) Open() bool {
	return p != PhaseClosed && p != PhaseFalsePositive && p != PhaseAcceptedRisk
}

// ActorSystem is the timeline actor for Leakwatch's own steps.
const ActorSystem = "system"

// Errors returned by the actions.
var (
	ErrNotFound          = errors.New("incident not found")
	ErrInvalidTransition = errors.New("transition not allowed from the incident's phase")
	ErrReviewRequired    = errors.New("closing requires the review: root cause, how it leaked and follow-ups")
	ErrReasonRequired    = errors.New("a reason is required")
)

// allowedFrom lists, for each target phase, the phases it may be entered
// from. Rotation before containment counts as containment too (the old
// secret is dead), so eradicated is reachable from identified.
var allowedFrom = map[Phase][]Phase{
	PhaseContained:     {PhaseIdentified},
	PhaseEradicated:    {PhaseIdentified, PhaseContained},
	PhaseRecovered:     {PhaseEradicated},
	PhaseClosed:        {PhaseRecovered},
	PhaseFalsePositive: {PhaseIdentified, PhaseContained, PhaseEradicated, PhaseRecovered},
	PhaseAcceptedRisk:  {PhaseIdentified, PhaseContained, PhaseEradicated, PhaseRecovered},
	PhaseIdentified:    {PhaseClosed, PhaseFalsePositive, PhaseAcceptedRisk}, // reopen
}

type transition struct {
	to      Phase
	actor   string
	kind    string // timeline kind; "transition" if empty
	details map[string]any
	// set runs extra column assignments ("review_root_cause = $3", …) with
	// args starting at $3.
	set     []string
	setArgs []any
}

// transitionTx moves the incident to t.to if its phase allows it, stamps the
// phase timestamp and writes the timeline entry. Already being in t.to is
// not an error (a retried job): it returns false and changes nothing.
func (s *Service) transitionTx(ctx context.Context, tx pgx.Tx, incidentID int64, t transition) (bool, error) {
	var cur Phase
	err := tx.QueryRow(ctx, `SELECT phase FROM incidents WHERE id = $1 FOR UPDATE`, incidentID).Scan(&cur)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("incident %d: %w", incidentID, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("lock incident %d: %w", incidentID, err)
	}
	if cur == t.to {
		return false, nil
	}
	if !slices.Contains(allowedFrom[t.to], cur) {
		return false, fmt.Errorf("incident %d from %s to %s: %w", incidentID, cur, t.to, ErrInvalidTransition)
	}
	now := s.now()
	sets := []string{"phase = $2"}
	switch t.to {
	case PhaseContained:
		sets = append(sets, "contained_at = $NOW", "containment = 'contained'")
	case PhaseEradicated:
		sets = append(sets, "eradicated_at = $NOW", "contained_at = coalesce(contained_at, $NOW)")
	case PhaseRecovered:
		sets = append(sets, "recovered_at = $NOW")
	case PhaseClosed, PhaseFalsePositive, PhaseAcceptedRisk:
		sets = append(sets, "closed_at = $NOW")
	case PhaseIdentified:
		sets = append(sets, "identified_at = $NOW", "closed_at = NULL", "contained_at = NULL", "eradicated_at = NULL",
			"recovered_at = NULL", "acknowledged_at = NULL", "acknowledged_by = ''", "escalated_at = NULL", "containment = 'pending'",
			"regressions = regressions + 1", "notified_at = NULL")
	}
	// Leaving a phase resets its reminder.
	sets = append(sets, "reminded_at = NULL")
	args := []any{incidentID, t.to}
	sets = append(sets, t.set...)
	args = append(args, t.setArgs...)
	args = append(args, now)
	nowParam := fmt.Sprintf("$%d", len(args))
	q := "UPDATE incidents SET " + strings.ReplaceAll(strings.Join(sets, ", "), "$NOW", nowParam) + " WHERE id = $1"
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return false, fmt.Errorf("move incident %d to %s: %w", incidentID, t.to, err)
	}
	kind := t.kind
	if kind == "" {
		kind = "transition"
	}
	if _, err := s.addEventTx(ctx, tx, incidentID, now, t.actor, kind, string(cur), string(t.to), t.details); err != nil {
		return false, err
	}
	s.observeTransition(ctx, tx, incidentID, t.to)
	return true, nil
}

// addEventTx appends a timeline entry, tells the timeline notifier (in the
// same transaction) and returns the entry's id.
func (s *Service) addEventTx(ctx context.Context, tx pgx.Tx, incidentID int64, at time.Time, actor, kind, from, to string, details map[string]any) (int64, error) {
	if details == nil {
		details = map[string]any{}
	}
	d, err := json.Marshal(details)
	if err != nil {
		return 0, fmt.Errorf("encode timeline details: %w", err)
	}
	var id int64
	err = tx.QueryRow(ctx, `
		INSERT INTO incident_events (incident_id, at, actor, kind, from_phase, to_phase, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		incidentID, at, actor, kind, from, to, d).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("add timeline entry %s to incident %d: %w", kind, incidentID, err)
	}
	if s.timeline != nil {
		if err := s.timeline.TimelineEventTx(ctx, tx, incidentID, id, kind); err != nil {
			return 0, fmt.Errorf("notify timeline entry %s of incident %d: %w", kind, incidentID, err)
		}
	}
	return id, nil
}
