package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// ErrNoEndpoint is returned when a key has no revocation endpoint.
var ErrNoEndpoint = errors.New("no revocation endpoint configured for the key or its organisation")

// ErrInvalidEndpoint is returned for a revocation URL that is not an
// absolute http(s) URL without credentials.
var ErrInvalidEndpoint = errors.New("invalid revocation endpoint")

// RevokeArgs queues the revocation request of an incident. Round is the
// incident's regression count, so a reopened incident asks again; Manual is
// the timeline entry of a "revoke now" action, which sends a new message.
type RevokeArgs struct {
	IncidentID int64 `json:"incident_id" river:"unique"`
	Round      int   `json:"round" river:"unique"`
	Manual     int64 `json:"manual,omitempty" river:"unique"`
}

// Kind implements river.JobArgs.
func (RevokeArgs) Kind() string { return "incident_revoke" }

// InsertOpts runs revocations on the incidents queue, once per round.
func (RevokeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueIncidents, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

func (a RevokeArgs) messageID() string {
	id := fmt.Sprintf("msg_lwrev_%d_%d", a.IncidentID, a.Round)
	if a.Manual != 0 {
		id += fmt.Sprintf("_m%d", a.Manual)
	}
	return id
}

type endpoint struct {
	id     *int64 // nil: a URL from the key registry (Ed25519 signature only)
	url    string
	secret string
}

// endpointForTx finds the key's revocation endpoint: its own, else the
// organisation's default; then the registry's URL (the key's own, else its
// organisation's default: keys.Key.EffectiveRevocationURL). nil: none, or
// the key is gone.
func endpointForTx(ctx context.Context, tx pgx.Tx, keyID int64) (*endpoint, error) {
	k, err := keys.Get(ctx, tx, keyID)
	if errors.Is(err, keys.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find revocation endpoint of key %d: %w", keyID, err)
	}
	var ep endpoint
	var id int64
	err = tx.QueryRow(ctx, `
		SELECT id, url, hmac_secret FROM revocation_endpoints
		WHERE org_id = $1 AND (key_id = $2 OR key_id IS NULL) AND enabled
		ORDER BY key_id NULLS LAST LIMIT 1`, k.OrgID, keyID).Scan(&id, &ep.url, &ep.secret)
	if err == nil {
		ep.id = &id
		return &ep, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("find revocation endpoint of key %d: %w", keyID, err)
	}
	if k.EffectiveRevocationURL == "" {
		return nil, nil
	}
	ep.url = k.EffectiveRevocationURL
	return &ep, nil
}

// SetRevocationEndpoint configures where revocation requests go: for one key
// (keyID > 0) or as the organisation's default (keyID 0). With hmac, a fresh
// per-endpoint HMAC secret is generated and returned, once; without, requests
// carry only the Ed25519 signature. The audit entry (revocation_endpoint.set
// on the key, 0 for the default) says only whether HMAC is on: the URL may
// carry a token.
func (s *Service) SetRevocationEndpoint(ctx context.Context, a audit.Actor, orgID, keyID int64, rawURL string, hmac bool) (string, error) {
	// Checked now against the deployment's guard (WithGuard), and again
	// on the address dialled at delivery time.
	if err := s.guard.CheckTarget(rawURL); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidEndpoint, err)
	}
	secret, stored := "", ""
	if hmac {
		var err error
		if secret, err = webhook.GenerateSecret(); err != nil {
			return "", err
		}
		// Sealed like the other credentials where a key is configured;
		// `leakwatch secrets reseal` seals those stored before.
		if stored, err = s.box.SealIfConfigured(secret); err != nil {
			return "", fmt.Errorf("seal revocation endpoint secret: %w", err)
		}
	}
	var key *int64
	if keyID > 0 {
		key = &keyID
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if key != nil {
			if k, err := keys.Get(ctx, tx, keyID); err != nil || k.OrgID != orgID {
				return fmt.Errorf("key %d: %w", keyID, ErrNotFound)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM revocation_endpoints WHERE key_id = $1`, keyID); err != nil {
				return err
			}
		} else if _, err := tx.Exec(ctx, `DELETE FROM revocation_endpoints WHERE org_id = $1 AND key_id IS NULL`, orgID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO revocation_endpoints (org_id, key_id, url, hmac_secret) VALUES ($1, $2, $3, $4)`,
			orgID, key, rawURL, stored)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "revocation_endpoint.set", "key", keyID, map[string]any{"hmac": hmac}))
	})
	if err != nil {
		return "", fmt.Errorf("set revocation endpoint: %w", err)
	}
	return secret, nil
}

// RevocationRequest is the JSON body POSTed to a revocation endpoint. It
// never carries the secret.
type RevocationRequest struct {
	Type        string    `json:"type"` // "revocation.requested"
	EventID     string    `json:"event_id"`
	IncidentID  int64     `json:"incident_id"`
	Key         KeyRef    `json:"key"`
	LeakURL     string    `json:"leak_url"`
	Source      string    `json:"source"`
	LeakedAt    time.Time `json:"leaked_at"`
	DetectedAt  time.Time `json:"detected_at"`
	RequestedAt time.Time `json:"requested_at"`
}

// KeyRef names a key without its secret.
type KeyRef struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Provider    string `json:"provider"`
	Fingerprint string `json:"fingerprint"`
}

// RevocationResponse is what a receiver answers with a 2xx.
type RevocationResponse struct {
	Status string `json:"status"` // "revoked", "manual" or "failed"
	Reason string `json:"reason,omitempty"`
}

// RevocationWorker is the River worker that delivers revocation webhooks
// and moves the incident according to the answer. (crawler.Revoker, the
// one interface named Revoker, revokes plaintext at match time.)
type RevocationWorker struct {
	river.WorkerDefaults[RevokeArgs]
	svc    *Service
	sender *webhook.Sender
	logger *slog.Logger
}

// NewRevocationWorker returns the revocation worker. sender signs and posts (see
// webhook.NewSender); it shares the Service's clock.
func NewRevocationWorker(svc *Service, sender *webhook.Sender, logger *slog.Logger) *RevocationWorker {
	return &RevocationWorker{svc: svc, sender: sender, logger: logger}
}

// Timeout bounds one attempt.
func (r *RevocationWorker) Timeout(*river.Job[RevokeArgs]) time.Duration { return time.Minute }

// Work sends one attempt. Answers other than revoked/manual/failed are
// retried by snoozing (River's snooze does not count attempts, so the count
// lives in the delivery log) with backoff for up to webhook.GiveUpAfter, then
// the incident is flagged "containment failed" and escalated.
func (r *RevocationWorker) Work(ctx context.Context, job *river.Job[RevokeArgs]) error {
	a := job.Args
	s := r.svc
	var (
		phase       Phase
		round       int
		keyID       int64
		req         RevocationRequest
		identified  time.Time
		eventAt     *time.Time
		containment string
	)
	err := s.pool.QueryRow(ctx, `
		SELECT i.phase, i.regressions, i.containment, i.key_id, i.fingerprint, i.identified_at,
			oc.url, oc.source, oc.event_at, oc.detected_at
		FROM incidents i
		JOIN LATERAL (SELECT * FROM occurrences WHERE incident_id = i.id ORDER BY id DESC LIMIT 1) oc ON true
		WHERE i.id = $1`, a.IncidentID).
		Scan(&phase, &round, &containment, &keyID, &req.Key.Fingerprint, &identified,
			&req.LeakURL, &req.Source, &eventAt, &req.DetectedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("incident %d no longer exists", a.IncidentID))
	}
	if err != nil {
		return fmt.Errorf("load incident %d: %w", a.IncidentID, err)
	}
	if phase != PhaseIdentified || round != a.Round {
		return nil // contained (or moved on, or reopened) meanwhile: nothing to do
	}
	key, err := keys.Get(ctx, s.pool, keyID)
	if errors.Is(err, keys.ErrNotFound) {
		// Deleting the key deletes its incidents: gone since the read above.
		return river.JobCancel(fmt.Errorf("incident %d no longer exists", a.IncidentID))
	}
	if err != nil {
		return fmt.Errorf("load key of incident %d: %w", a.IncidentID, err)
	}
	req.Key.Name, req.Key.Provider = key.Name, key.Provider
	var ep *endpoint
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		ep, err = endpointForTx(ctx, tx, keyID)
		return err
	}); err != nil {
		return err
	}
	if ep == nil {
		// The endpoint was removed after the request was queued: a human
		// has to contain this one.
		_, err := s.pool.Exec(ctx, `UPDATE incidents SET containment = 'none' WHERE id = $1 AND phase = 'identified'`, a.IncidentID)
		return err
	}
	req.Type = "revocation.requested"
	req.EventID = a.messageID()
	req.IncidentID = a.IncidentID
	req.Key.ID = keyID
	req.LeakedAt = req.DetectedAt
	if eventAt != nil {
		req.LeakedAt = *eventAt
	}
	now := s.now()
	req.RequestedAt = now
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode revocation request: %w", err)
	}
	incID := a.IncidentID
	d, err := webhook.EnsureDelivery(ctx, s.pool, webhook.Delivery{
		MessageID: req.EventID, Kind: "revocation", IncidentID: &incID, EndpointID: ep.id, URL: ep.url, Payload: body, CreatedAt: now,
	})
	if err != nil {
		return err
	}
	if d.Status != webhook.StatusPending {
		return nil
	}

	secret, err := s.box.OpenStored(ep.secret)
	if err != nil {
		return fmt.Errorf("open HMAC secret of the revocation endpoint of incident %d: %w", a.IncidentID, err)
	}
	res := r.sender.Send(ctx, webhook.Message{ID: d.MessageID, URL: ep.url, Body: d.Payload, HMACSecret: secret})
	now = s.now()
	var answer RevocationResponse
	if res.OK() {
		_ = json.Unmarshal(res.Body, &answer)
	}
	log := r.logger.With(slog.Int64("incident_id", a.IncidentID), slog.String("webhook_id", d.MessageID), slog.Int("attempt", d.Attempts+1))
	attemptDetails := map[string]any{"webhook_id": d.MessageID, "attempt": d.Attempts + 1, "status_code": res.StatusCode, "latency_ms": res.Latency.Milliseconds()}

	switch {
	case res.OK() && answer.Status == "revoked":
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := webhook.RecordAttempt(ctx, tx, d.ID, now, res, webhook.StatusSucceeded); err != nil {
				return err
			}
			_, err := s.transitionTx(ctx, tx, a.IncidentID, transition{to: PhaseContained, actor: "revocation-webhook", kind: "revoked", details: attemptDetails})
			if errors.Is(err, ErrInvalidTransition) {
				return nil // a human moved it on meanwhile
			}
			return err
		})
		if err == nil {
			log.Info("key revoked by its revocation endpoint")
		}
		return err
	case res.OK() && answer.Status == "manual":
		return s.containmentOutcome(ctx, d, now, res, webhook.StatusSucceeded, a.IncidentID, "manual", "containment_manual", attemptDetails)
	case res.OK() && answer.Status == "failed":
		attemptDetails["reason"] = truncate(answer.Reason, 500)
		return s.containmentOutcome(ctx, d, now, res, webhook.StatusFailed, a.IncidentID, "failed", "containment_failed", attemptDetails)
	case errors.Is(res.Err, webhook.ErrForbiddenAddress) || res.StatusCode == http.StatusGone:
		// Retrying cannot help: the address is refused, or the receiver said
		// the endpoint is gone.
		attemptDetails["reason"] = "endpoint refused the request for good or its address is not allowed"
		return s.containmentOutcome(ctx, d, now, res, webhook.StatusFailed, a.IncidentID, "failed", "containment_failed", attemptDetails)
	}

	wait := webhook.Backoff(d.Attempts + 1)
	if now.Add(wait).Sub(d.CreatedAt) > webhook.GiveUpAfter {
		attemptDetails["reason"] = "no usable answer within 24 hours"
		log.Warn("revocation endpoint never answered; containment failed")
		return s.containmentOutcome(ctx, d, now, res, webhook.StatusFailed, a.IncidentID, "failed", "containment_failed", attemptDetails)
	}
	if err := webhook.RecordAttempt(ctx, s.pool, d.ID, now, res, webhook.StatusPending); err != nil {
		return err
	}
	log.Info("revocation request not accepted; retrying", slog.Int("status_code", res.StatusCode), slog.Duration("wait", wait))
	return river.JobSnooze(wait)
}

// containmentOutcome records a final answer other than "revoked": the
// attempt, the incident's containment flag, a timeline entry and its
// notification (to the escalation channel for failures), in one transaction.
func (s *Service) containmentOutcome(ctx context.Context, d webhook.Delivery, now time.Time, res webhook.Result, status string, incidentID int64, containment, kind string, details map[string]any) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := webhook.RecordAttempt(ctx, tx, d.ID, now, res, status); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE incidents SET containment = $2 WHERE id = $1`, incidentID, containment); err != nil {
			return fmt.Errorf("flag incident %d: %w", incidentID, err)
		}
		_, err := s.addEventTx(ctx, tx, incidentID, now, "revocation-webhook", kind, "", "", details)
		if err != nil {
			return err
		}
		if kind == "containment_failed" {
			if _, err := tx.Exec(ctx, `UPDATE incidents SET escalated_at = coalesce(escalated_at, $2) WHERE id = $1`, incidentID, now); err != nil {
				return err
			}
		}
		return nil
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// EndpointInfo describes a configured revocation endpoint without its
// secret or path (URLs may carry tokens): the host only.
type EndpointInfo struct {
	ID        int64     `json:"-"`      // changes when the endpoint is set again
	KeyID     *int64    `json:"key_id"` // nil: the organisation default
	Host      string    `json:"host"`
	HMAC      bool      `json:"hmac"`
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
}

// ResealRevocationSecrets re-encrypts every revocation endpoint's HMAC
// secret under the current encryption key, sealing those stored in
// plaintext (before a key was configured), and returns how many changed.
func (s *Service) ResealRevocationSecrets(ctx context.Context) (int, error) {
	if !s.box.Configured() {
		return 0, secretbox.ErrNoKey
	}
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ids, err := secretbox.ResealRows[int64](ctx, tx, s.box,
			`SELECT id, hmac_secret FROM revocation_endpoints WHERE hmac_secret <> '' ORDER BY id FOR UPDATE`,
			`UPDATE revocation_endpoints SET hmac_secret = $2 WHERE id = $1`)
		n = len(ids)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reseal revocation endpoint secrets: %w", err)
	}
	return n, nil
}

// RevocationEndpoints lists the organisation's endpoints.
func (s *Service) RevocationEndpoints(ctx context.Context, orgID int64) ([]EndpointInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, key_id, url, hmac_secret <> '', enabled, created_at
		FROM revocation_endpoints WHERE org_id = $1 ORDER BY key_id NULLS FIRST`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list revocation endpoints of org %d: %w", orgID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EndpointInfo, error) {
		var e EndpointInfo
		var raw string
		if err := r.Scan(&e.ID, &e.KeyID, &raw, &e.HMAC, &e.Enabled, &e.CreatedAt); err != nil {
			return e, err
		}
		if u, err := url.Parse(raw); err == nil {
			e.Host = u.Host
		}
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list revocation endpoints of org %d: %w", orgID, err)
	}
	return out, nil
}

// EndpointDeliveries lists the newest revocation requests (at most limit)
// sent to one of the organisation's endpoints, each with its attempts.
// Another organisation's endpoint is ErrNotFound.
func (s *Service) EndpointDeliveries(ctx context.Context, orgID, endpointID int64, limit int) ([]Delivery, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revocation_endpoints WHERE id = $1 AND org_id = $2)`, endpointID, orgID).Scan(&ok); err != nil {
		return nil, fmt.Errorf("find revocation endpoint %d: %w", endpointID, err)
	}
	if !ok {
		return nil, ErrNotFound
	}
	dels, err := webhook.DeliveriesForEndpoint(ctx, s.pool, "revocation", endpointID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(dels))
	for _, d := range dels {
		as, err := webhook.Attempts(ctx, s.pool, d.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, Delivery{Delivery: d, AttemptLog: as})
	}
	return out, nil
}

// DeleteRevocationEndpoint removes the key's endpoint (keyID > 0) or the
// organisation default (0). Removing one that does not exist is ErrNotFound.
// It is audited as revocation_endpoint.delete in the same transaction.
func (s *Service) DeleteRevocationEndpoint(ctx context.Context, a audit.Actor, orgID, keyID int64) error {
	q := `DELETE FROM revocation_endpoints WHERE org_id = $1 AND key_id IS NULL`
	args := []any{orgID}
	if keyID > 0 {
		q = `DELETE FROM revocation_endpoints WHERE org_id = $1 AND key_id = $2`
		args = append(args, keyID)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "revocation_endpoint.delete", "key", keyID, nil))
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete revocation endpoint: %w", err)
	}
	return nil
}
