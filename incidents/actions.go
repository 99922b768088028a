package incidents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/matcher"
)

// Actor is who performs an action: a member through the API, a page or
// Slack, or Leakwatch itself. Name is shown in the timeline. OrgID scopes
// the action: an incident of another organisation is ErrNotFound; OrgID 0
// (the system) may act on any incident. Every action is written to the
// audit log in its own transaction, as made by the actor.
type Actor = audit.Actor

// System is the actor for automatic steps.
var System = Actor{Name: ActorSystem}

// Review is the post-incident review closing requires.
type Review struct {
	RootCause  string `json:"root_cause"`
	LeakVector string `json:"leak_vector"` // how it leaked
	FollowUps  string `json:"follow_ups"`
}

func (r Review) complete() bool {
	return strings.TrimSpace(r.RootCause) != "" && strings.TrimSpace(r.LeakVector) != "" && strings.TrimSpace(r.FollowUps) != ""
}

// checkFreeText refuses notes, reasons and reviews holding what looks like
// a plaintext secret (field, value pairs): the timeline reaches Slack, the
// event webhooks and the dashboard, and Leakwatch never keeps a secret.
func checkFreeText(fieldValues ...string) error {
	for i := 0; i+1 < len(fieldValues); i += 2 {
		if err := matcher.CheckFreeText(fieldValues[i], fieldValues[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// inOrgTx checks the incident exists and belongs to the actor's org.
func inOrgTx(ctx context.Context, tx pgx.Tx, id int64, a Actor) (int64, error) {
	var orgID int64
	err := tx.QueryRow(ctx, `SELECT org_id FROM incidents WHERE id = $1`, id).Scan(&orgID)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && a.OrgID != 0 && orgID != a.OrgID) {
		return 0, fmt.Errorf("incident %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("load incident %d: %w", id, err)
	}
	return orgID, nil
}

// act runs f in a transaction after the org check and records the action
// in the audit log in the same transaction, as incident.<verb> with
// details.
func (s *Service) act(ctx context.Context, id int64, a Actor, what, verb string, details map[string]any, f func(tx pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		orgID, err := inOrgTx(ctx, tx, id, a)
		if err != nil {
			return err
		}
		if err := f(tx); err != nil {
			return err
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "incident."+verb, "incident", id, details))
	})
	if err != nil {
		return fmt.Errorf("%s incident %d: %w", what, id, err)
	}
	s.logger.Info("incident action", slog.String("action", what), slog.Int64("incident_id", id), slog.Int64("user_id", a.UserID))
	return nil
}

// Acknowledge records that a member has seen the incident, which stops its
// SLA escalation. Acknowledging twice keeps the first.
func (s *Service) Acknowledge(ctx context.Context, id int64, a Actor) error {
	return s.act(ctx, id, a, "acknowledge", "acknowledge", nil, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE incidents SET acknowledged_at = $2, acknowledged_by = $3 WHERE id = $1 AND acknowledged_at IS NULL`,
			id, s.now(), a.Name)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = s.addEventTx(ctx, tx, id, s.now(), a.Name, "acknowledged", "", "", nil)
		return err
	})
}

// Assign makes a member (a user id) responsible for the incident.
func (s *Service) Assign(ctx context.Context, id, userID int64, a Actor) error {
	return s.act(ctx, id, a, "assign", "assign", map[string]any{"user_id": userID}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE incidents SET assignee_id = $2 WHERE id = $1`, id, userID); err != nil {
			return err
		}
		_, err := s.addEventTx(ctx, tx, id, s.now(), a.Name, "assigned", "", "", map[string]any{"assignee_id": userID})
		return err
	})
}

// AddNote appends a free-text note to the timeline.
func (s *Service) AddNote(ctx context.Context, id int64, a Actor, note string) error {
	note = strings.TrimSpace(note)
	if note == "" || len(note) > 4000 {
		return fmt.Errorf("note must be 1 to 4000 characters: %w", ErrReasonRequired)
	}
	if err := checkFreeText("note", note); err != nil {
		return err
	}
	return s.act(ctx, id, a, "add note to", "note", nil, func(tx pgx.Tx) error {
		_, err := s.addEventTx(ctx, tx, id, s.now(), a.Name, "note", "", "", map[string]any{"note": note})
		return err
	})
}

// MarkContained records that a human revoked or disabled the secret, for
// keys without automation (or when automation said "manual").
func (s *Service) MarkContained(ctx context.Context, id int64, a Actor, note string) error {
	if err := checkFreeText("note", note); err != nil {
		return err
	}
	return s.act(ctx, id, a, "mark contained", "contain", nil, func(tx pgx.Tx) error {
		_, err := s.transitionTx(ctx, tx, id, transition{to: PhaseContained, actor: a.Name, kind: "marked_contained", details: map[string]any{"note": note}})
		return err
	})
}

// RevokeNow sends a fresh revocation request (a new message id) to the key's
// endpoint, e.g. after containment failed or the endpoint was fixed.
func (s *Service) RevokeNow(ctx context.Context, id int64, a Actor) error {
	return s.act(ctx, id, a, "revoke", "revoke", nil, func(tx pgx.Tx) error {
		var keyID int64
		var phase Phase
		var round int
		if err := tx.QueryRow(ctx, `SELECT key_id, phase, regressions FROM incidents WHERE id = $1 FOR UPDATE`, id).Scan(&keyID, &phase, &round); err != nil {
			return err
		}
		if phase != PhaseIdentified {
			return fmt.Errorf("revoke in phase %s: %w", phase, ErrInvalidTransition)
		}
		ep, err := endpointForTx(ctx, tx, keyID)
		if err != nil {
			return err
		}
		if ep == nil {
			return ErrNoEndpoint
		}
		evID, err := s.addEventTx(ctx, tx, id, s.now(), a.Name, "revoke_requested", "", "", nil)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE incidents SET containment = 'requested' WHERE id = $1`, id); err != nil {
			return err
		}
		_, err = s.river.InsertTx(ctx, tx, RevokeArgs{IncidentID: id, Round: round, Manual: evID}, nil)
		return err
	})
}

// KeyRotated moves the key's open incident to eradicated: a new secret
// replaced the leaked one. Keys without an open incident are left alone.
func (s *Service) KeyRotated(ctx context.Context, keyID int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.KeyRotatedTx(ctx, tx, keyID) })
}

// KeyRotatedTx is KeyRotated inside the caller's transaction, so the
// registry's rotation and the incident's eradication commit together.
func (s *Service) KeyRotatedTx(ctx context.Context, tx pgx.Tx, keyID int64) error {
	var id int64
	var phase Phase
	err := tx.QueryRow(ctx, `SELECT id, phase FROM incidents WHERE key_id = $1 AND state = 'open'`, keyID).Scan(&id, &phase)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find open incident of key %d: %w", keyID, err)
	}
	if phase != PhaseIdentified && phase != PhaseContained {
		return nil
	}
	if _, err := s.transitionTx(ctx, tx, id, transition{to: PhaseEradicated, actor: "key-rotation", kind: "rotated", details: map[string]any{"key_id": keyID}}); err != nil {
		return err
	}
	s.logger.Info("incident eradicated by key rotation", slog.Int64("incident_id", id), slog.Int64("key_id", keyID))
	return nil
}

// ConfirmRecovery records that systems run on the new secret.
func (s *Service) ConfirmRecovery(ctx context.Context, id int64, a Actor, note string) error {
	if err := checkFreeText("note", note); err != nil {
		return err
	}
	return s.act(ctx, id, a, "confirm recovery of", "recover", nil, func(tx pgx.Tx) error {
		_, err := s.transitionTx(ctx, tx, id, transition{to: PhaseRecovered, actor: a.Name, details: map[string]any{"note": note}})
		return err
	})
}

// Close ends a recovered incident with its post-incident review.
func (s *Service) Close(ctx context.Context, id int64, a Actor, r Review) error {
	if !r.complete() {
		return ErrReviewRequired
	}
	if err := checkFreeText("root_cause", r.RootCause, "leak_vector", r.LeakVector, "follow_ups", r.FollowUps); err != nil {
		return err
	}
	return s.act(ctx, id, a, "close", "close", nil, func(tx pgx.Tx) error {
		_, err := s.transitionTx(ctx, tx, id, transition{
			to: PhaseClosed, actor: a.Name, kind: "closed",
			details: map[string]any{"root_cause": r.RootCause, "leak_vector": r.LeakVector, "follow_ups": r.FollowUps},
			set:     []string{"review_root_cause = $3", "review_leak_vector = $4", "review_follow_ups = $5"},
			setArgs: []any{r.RootCause, r.LeakVector, r.FollowUps},
		})
		return err
	})
}

// MarkFalsePositive closes the incident as not a real exposure.
func (s *Service) MarkFalsePositive(ctx context.Context, id int64, a Actor, reason string) error {
	return s.sideExit(ctx, id, a, PhaseFalsePositive, reason)
}

// AcceptRisk closes the incident with the risk accepted, for a reason.
func (s *Service) AcceptRisk(ctx context.Context, id int64, a Actor, reason string) error {
	return s.sideExit(ctx, id, a, PhaseAcceptedRisk, reason)
}

func (s *Service) sideExit(ctx context.Context, id int64, a Actor, to Phase, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return ErrReasonRequired
	}
	if err := checkFreeText("reason", reason); err != nil {
		return err
	}
	verb := map[Phase]string{PhaseFalsePositive: "false_positive", PhaseAcceptedRisk: "accept_risk"}[to]
	return s.act(ctx, id, a, string(to), verb, map[string]any{"reason": reason}, func(tx pgx.Tx) error {
		_, err := s.transitionTx(ctx, tx, id, transition{
			to: to, actor: a.Name, details: map[string]any{"reason": reason},
			set: []string{"resolution_reason = $3"}, setArgs: []any{reason},
		})
		return err
	})
}

// Reopen puts a closed incident back to identified, restarting containment.
func (s *Service) Reopen(ctx context.Context, id int64, a Actor, reason string) error {
	if err := checkFreeText("reason", reason); err != nil {
		return err
	}
	return s.act(ctx, id, a, "reopen", "reopen", map[string]any{"reason": reason}, func(tx pgx.Tx) error {
		var cur Phase
		if err := tx.QueryRow(ctx, `SELECT phase FROM incidents WHERE id = $1`, id).Scan(&cur); err != nil {
			return err
		}
		if cur.Open() {
			return fmt.Errorf("reopen an incident in phase %s: %w", cur, ErrInvalidTransition)
		}
		var otherOpen bool
		if err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM incidents o JOIN incidents i ON i.key_id = o.key_id WHERE i.id = $1 AND o.id <> i.id AND o.state = 'open')`,
			id).Scan(&otherOpen); err != nil {
			return err
		}
		if otherOpen {
			// One open incident per key: the newer one carries the exposure.
			return fmt.Errorf("reopen incident %d: the key has another open incident: %w", id, ErrInvalidTransition)
		}
		changed, err := s.transitionTx(ctx, tx, id, transition{to: PhaseIdentified, actor: a.Name, kind: "reopened", details: map[string]any{"reason": reason}})
		if err != nil || !changed {
			return err
		}
		var keyID int64
		var round int
		if err := tx.QueryRow(ctx, `SELECT key_id, regressions FROM incidents WHERE id = $1`, id).Scan(&keyID, &round); err != nil {
			return err
		}
		return s.afterIdentifiedTx(ctx, tx, id, round, crawler.Finding{KeyID: keyID})
	})
}

// KeyStateChangedTx follows the registry: a key marked revoked there has
// its open incident contained (the secret no longer works). Other states
// change nothing. It runs in the registry's transaction.
func (s *Service) KeyStateChangedTx(ctx context.Context, tx pgx.Tx, keyID int64, state string) error {
	if state != "revoked" {
		return nil
	}
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM incidents WHERE key_id = $1 AND state = 'open' AND phase = 'identified'`, keyID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find open incident of key %d: %w", keyID, err)
	}
	_, err = s.transitionTx(ctx, tx, id, transition{to: PhaseContained, actor: "key-registry", kind: "revoked", details: map[string]any{"key_id": keyID}})
	return err
}
