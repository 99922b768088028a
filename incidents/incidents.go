package incidents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// dedupKey identifies a sighting, so recording it twice is a no-op.
func dedupKey(f crawler.Finding) string {
	h := sha256.New()
	for _, s := range []string{f.Source, f.EventID, f.URL, f.Repo, f.Commit, f.Path, strconv.Itoa(f.Line), strconv.Itoa(f.Column), f.Encoding} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Service records findings and drives incidents through their phases.
type Service struct {
	pool    *pgxpool.Pool
	river   *jobs.Client
	logger  *slog.Logger
	now     func() time.Time
	metrics *metrics
	// timeline hears of every timeline entry (Config.Notifier).
	timeline TimelineNotifier

	webhookKeys []webhook.PublicKey

	box   *secretbox.Box // seals the escalation Slack URL and revocation secrets
	guard *webhook.Guard // checks the URLs set

	changesOnce sync.Once
	changes     *Changes // the dashboard's live feed (Changes)
	changesPoll time.Duration
}

// Config is what a Service needs beside its pool, River client and logger.
// The zero Config is a Service that tells nobody, seals nothing and checks
// no URL: enough for the CLI and for tests.
type Config struct {
	// Notifier hears of every timeline entry, in its transaction: Slack
	// and the event webhooks (Notifiers{…}). nil tells nobody.
	Notifier TimelineNotifier
	// Box seals the escalation Slack URL and the revocation secrets the
	// Service saves (without a configured key they are stored as given).
	Box *secretbox.Box
	// Guard makes the Service refuse escalation and revocation URLs the
	// deployment's outgoing-request guard would never reach. nil: no check.
	Guard *webhook.Guard
	// WebhookKeys are the signing keys whose public halves receivers
	// verify Ed25519 signatures with (WebhookKeys publishes them).
	WebhookKeys []webhook.SigningKey
}

// NewService returns a Service. riverClient may be an insert-only client:
// the Service only inserts jobs, River workers that need it are built after.
func NewService(pool *pgxpool.Pool, riverClient *jobs.Client, logger *slog.Logger, cfg Config) *Service {
	return &Service{pool: pool, river: riverClient, logger: logger, now: time.Now,
		timeline: cfg.Notifier, box: cfg.Box, guard: cfg.Guard, webhookKeys: webhook.PublicKeys(cfg.WebhookKeys)}
}

// Record stores each finding: the first sighting of a key opens an incident
// (identified) and, in the same transaction, queues its alert and its
// revocation request; later sightings while it is open become occurrences of
// it. A sighting of a key whose incident is closed reopens it as a
// regression, unless the secret seen is one the key was rotated away from
// (then it is dead: the occurrence is recorded, nobody is alerted).
// Recording the same sighting again changes nothing, so callers may retry
// freely.
func (s *Service) Record(ctx context.Context, findings []crawler.Finding) error {
	for _, f := range findings {
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.recordTx(ctx, tx, f) })
		if err != nil {
			return fmt.Errorf("record finding of key %d: %w", f.KeyID, err)
		}
	}
	return nil
}

// lockKeyTx serialises the incident decisions for one key, so concurrent
// sightings converge on a single incident and a single alert.
func lockKeyTx(ctx context.Context, tx pgx.Tx, keyID int64) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('leakwatch.incident.key', $1))`, keyID)
	if err != nil {
		return fmt.Errorf("lock key %d: %w", keyID, err)
	}
	return nil
}

type lastIncident struct {
	id          int64
	phase       Phase
	fingerprint string
	eradicated  bool
	severity    Severity
}

func (s *Service) recordTx(ctx context.Context, tx pgx.Tx, f crawler.Finding) error {
	if f.DetectedAt.IsZero() {
		f.DetectedAt = s.now()
	}
	if err := lockKeyTx(ctx, tx, f.KeyID); err != nil {
		return err
	}
	dedup := dedupKey(f)
	var replay bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM occurrences WHERE key_id = $1 AND dedup_key = $2)`,
		f.KeyID, dedup).Scan(&replay); err != nil {
		return fmt.Errorf("check sighting: %w", err)
	}
	if replay {
		return nil
	}
	key, err := keys.Get(ctx, tx, f.KeyID)
	if errors.Is(err, keys.ErrNotFound) {
		// The key was deleted between the scan and now: nothing to protect.
		return nil
	}
	if err != nil {
		return fmt.Errorf("load key: %w", err)
	}
	currentFP := key.Fingerprint
	if f.Fingerprint == "" {
		f.Fingerprint = currentFP
	}
	// A secret the key was rotated away from is dead.
	dead := f.Fingerprint != currentFP

	var last *lastIncident
	var li lastIncident
	err = tx.QueryRow(ctx, `
		SELECT id, phase, fingerprint, eradicated_at IS NOT NULL, severity
		FROM incidents WHERE key_id = $1 ORDER BY id DESC LIMIT 1`, f.KeyID).
		Scan(&li.id, &li.phase, &li.fingerprint, &li.eradicated, &li.severity)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("find incident: %w", err)
	default:
		last = &li
	}

	switch {
	case last != nil && (dead || (!last.phase.Open() && last.fingerprint == f.Fingerprint && last.eradicated)):
		// The old secret again, after rotation: worth a record on the key's
		// last incident, open or not, but not an alert, a reopening, a
		// severity change or a containment.
		if err := s.appendTx(ctx, tx, last.id, f, dedup, true); err != nil {
			return err
		}
		_, err := s.addEventTx(ctx, tx, last.id, s.now(), ActorSystem, "seen_after_rotation", "", "", map[string]any{"url": f.URL, "source": f.Source})
		return err
	case last != nil && last.phase.Open():
		if err := s.appendTx(ctx, tx, last.id, f, dedup, false); err != nil {
			return err
		}
		if err := s.raiseSeverityTx(ctx, tx, *last, f); err != nil {
			return err
		}
		if f.Revoked != "" && last.phase == PhaseIdentified {
			_, err := s.transitionTx(ctx, tx, last.id, transition{to: PhaseContained, actor: f.Revoked, kind: "revoked", details: map[string]any{"by": f.Revoked}})
			return err
		}
		return nil
	case last != nil && last.fingerprint == f.Fingerprint && (last.phase == PhaseFalsePositive || last.phase == PhaseAcceptedRisk):
		// The team already judged this secret; keep the sighting, stay quiet.
		return s.appendTx(ctx, tx, last.id, f, dedup, false)
	case last != nil && last.phase == PhaseClosed:
		return s.reopenTx(ctx, tx, last.id, f, dedup)
	case dead:
		// No incident to attach it to; a dead secret opens none.
		return nil
	default:
		return s.openTx(ctx, tx, f, dedup)
	}
}

// appendTx adds a sighting to an incident; afterRotation marks one of a
// secret the key was rotated away from, or of an eradicated incident's.
func (s *Service) appendTx(ctx context.Context, tx pgx.Tx, incidentID int64, f crawler.Finding, dedup string, afterRotation bool) error {
	if _, err := tx.Exec(ctx, `UPDATE incidents SET last_seen_at = GREATEST(last_seen_at, $2) WHERE id = $1`,
		incidentID, seenAt(f)); err != nil {
		return fmt.Errorf("update incident %d: %w", incidentID, err)
	}
	if err := insertOccurrenceTx(ctx, tx, incidentID, f, dedup, afterRotation); err != nil {
		return err
	}
	return s.occurrenceAddedTx(ctx, tx, incidentID, f, dedup)
}

func insertOccurrenceTx(ctx context.Context, tx pgx.Tx, incidentID int64, f crawler.Finding, dedup string, afterRotation bool) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO occurrences (incident_id, key_id, dedup_key, source, event_id, event_type, url, repo,
			commit_sha, path, line, col, encoding, actor, preview, event_at, detected_at, title, fetched_at,
			private, reach, after_rotation, via)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
		ON CONFLICT (key_id, dedup_key) DO NOTHING`,
		incidentID, f.KeyID, dedup, f.Source, f.EventID, f.EventType, f.URL, f.Repo,
		f.Commit, f.Path, f.Line, f.Column, f.Encoding, f.Actor, f.Preview, nullTime(f.EventAt), f.DetectedAt,
		f.Title, nullTime(f.FetchedAt), f.Private, nullReach(f.Reach), afterRotation, viaOf(f))
	if err != nil {
		return fmt.Errorf("insert occurrence: %w", err)
	}
	return nil
}

// viaOf is how a finding was reached, "live" unless it says otherwise.
func viaOf(f crawler.Finding) string {
	if f.Via == "" {
		return "live"
	}
	return f.Via
}

// nullReach stores an unknown reach (0) as NULL.
func nullReach(n int) *int {
	if n <= 0 {
		return nil
	}
	return &n
}

// severityOf is the severity of a sighting of a key: the key's facts and
// the sighting's exposure.
func severityOf(kf keyFacts, f crawler.Finding) Severity {
	return ComputeSeverity(SeverityInput{Provider: kf.provider, Environment: kf.environment, Scopes: kf.scopes,
		Source: f.Source, Public: !f.Private, Reach: f.Reach})
}

// raiseSeverityTx raises an open incident's severity when a new sighting is
// more exposed than the ones before (a private repository's key now in a
// popular public one). It never lowers it: a wider exposure already
// happened.
func (s *Service) raiseSeverityTx(ctx context.Context, tx pgx.Tx, in lastIncident, f crawler.Finding) error {
	incidentID, cur := in.id, in.severity
	if cur == SeverityCritical {
		return nil // nothing above it
	}
	kf, err := loadKeyFactsTx(ctx, tx, f.KeyID, f.OrgID)
	if err != nil {
		return err
	}
	sev := severityOf(kf, f)
	if sev.Rank() <= cur.Rank() {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE incidents SET severity = $2 WHERE id = $1`, incidentID, sev); err != nil {
		return fmt.Errorf("raise severity of incident %d: %w", incidentID, err)
	}
	_, err = s.addEventTx(ctx, tx, incidentID, s.now(), ActorSystem, "severity_raised", "", "", map[string]any{
		"from": cur, "to": sev, "url": f.URL, "source": f.Source, "private": f.Private, "reach": f.Reach,
	})
	return err
}

func seenAt(f crawler.Finding) time.Time {
	if f.EventAt.IsZero() {
		return f.DetectedAt
	}
	return f.EventAt
}

// keyFacts are what severity and assignment need to know about a key (its
// notes stand for its scopes) and its organisation's default assignee.
type keyFacts struct {
	provider, environment, scopes, owner string
	assignee                             *int64
}

func loadKeyFactsTx(ctx context.Context, tx pgx.Tx, keyID, orgID int64) (keyFacts, error) {
	k, err := keys.Get(ctx, tx, keyID)
	if err != nil {
		return keyFacts{}, fmt.Errorf("load key %d: %w", keyID, err)
	}
	kf := keyFacts{provider: k.Provider, environment: k.Environment, scopes: k.Notes, owner: k.Owner}
	err = tx.QueryRow(ctx, `SELECT default_assignee_id FROM incident_settings WHERE org_id = $1`, orgID).Scan(&kf.assignee)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return kf, fmt.Errorf("load default assignee of org %d: %w", orgID, err)
	}
	return kf, nil
}

func (s *Service) openTx(ctx context.Context, tx pgx.Tx, f crawler.Finding, dedup string) error {
	kf, err := loadKeyFactsTx(ctx, tx, f.KeyID, f.OrgID)
	if err != nil {
		return err
	}
	sev := severityOf(kf, f)
	now := s.now()
	var id int64
	err = tx.QueryRow(ctx, `
		INSERT INTO incidents (org_id, key_id, first_seen_at, last_seen_at, source_url, fingerprint, severity, assignee_id, identified_at)
		VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8)
		RETURNING id`, f.OrgID, f.KeyID, seenAt(f), f.URL, f.Fingerprint, sev, kf.assignee, now).Scan(&id)
	if err != nil {
		return fmt.Errorf("open incident: %w", err)
	}
	if err := insertOccurrenceTx(ctx, tx, id, f, dedup, false); err != nil {
		return err
	}
	if _, err := s.addEventTx(ctx, tx, id, now, ActorSystem, "opened", "", string(PhaseIdentified), map[string]any{
		"severity": sev, "source": f.Source, "url": f.URL, "assignee_id": kf.assignee, "owner": kf.owner,
		"private": f.Private, "reach": f.Reach,
	}); err != nil {
		return err
	}
	if err := s.afterIdentifiedTx(ctx, tx, id, 0, f); err != nil {
		return err
	}
	s.observeDetection(f)
	s.logger.Info("incident opened", slog.Int64("incident_id", id), slog.Int64("key_id", f.KeyID), slog.Int64("org_id", f.OrgID), slog.String("severity", string(sev)))
	return nil
}

func (s *Service) reopenTx(ctx context.Context, tx pgx.Tx, incidentID int64, f crawler.Finding, dedup string) error {
	now := s.now()
	kf, err := loadKeyFactsTx(ctx, tx, f.KeyID, f.OrgID)
	if err != nil {
		return err
	}
	// A regression is a new exposure: its severity is this sighting's.
	sev := severityOf(kf, f)
	var regressions int
	err = tx.QueryRow(ctx, `
		UPDATE incidents SET phase = 'identified', fingerprint = $2, last_seen_at = GREATEST(last_seen_at, $3), severity = $5,
			regressions = regressions + 1, identified_at = $4, acknowledged_at = NULL, acknowledged_by = '',
			contained_at = NULL, eradicated_at = NULL, recovered_at = NULL, closed_at = NULL,
			escalated_at = NULL, reminded_at = NULL, containment = 'pending', notified_at = NULL
		WHERE id = $1 RETURNING regressions`, incidentID, f.Fingerprint, seenAt(f), now, sev).Scan(&regressions)
	if err != nil {
		return fmt.Errorf("reopen incident %d: %w", incidentID, err)
	}
	if err := insertOccurrenceTx(ctx, tx, incidentID, f, dedup, false); err != nil {
		return err
	}
	_, err = s.addEventTx(ctx, tx, incidentID, now, ActorSystem, "regression", string(PhaseClosed), string(PhaseIdentified),
		map[string]any{"url": f.URL, "source": f.Source, "regressions": regressions, "severity": sev, "private": f.Private, "reach": f.Reach})
	if err != nil {
		return err
	}
	if err := s.afterIdentifiedTx(ctx, tx, incidentID, regressions, f); err != nil {
		return err
	}
	s.logger.Info("incident reopened as a regression", slog.Int64("incident_id", incidentID), slog.Int64("key_id", f.KeyID))
	return nil
}

// afterIdentifiedTx starts containment: a secret already revoked at match
// time is contained at once; otherwise a revocation request is queued when
// an endpoint is configured, and the team is told to act when none is.
func (s *Service) afterIdentifiedTx(ctx context.Context, tx pgx.Tx, incidentID int64, regressions int, f crawler.Finding) error {
	if f.Revoked != "" {
		_, err := s.transitionTx(ctx, tx, incidentID, transition{
			to: PhaseContained, actor: f.Revoked, kind: "revoked", details: map[string]any{"by": f.Revoked},
		})
		return err
	}
	ep, err := endpointForTx(ctx, tx, f.KeyID)
	if err != nil {
		return err
	}
	if ep == nil {
		if _, err := tx.Exec(ctx, `UPDATE incidents SET containment = 'none' WHERE id = $1`, incidentID); err != nil {
			return fmt.Errorf("mark incident %d without automation: %w", incidentID, err)
		}
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE incidents SET containment = 'requested' WHERE id = $1`, incidentID); err != nil {
		return fmt.Errorf("mark incident %d requested: %w", incidentID, err)
	}
	if _, err := s.river.InsertTx(ctx, tx, RevokeArgs{IncidentID: incidentID, Round: regressions}, nil); err != nil {
		return fmt.Errorf("queue revocation request: %w", err)
	}
	return nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// AddWorkers registers the incident workers: revocation requests (and
// their tests) and the SLA sweep. The revoker may be nil (no outgoing webhooks). Alerts are the
// timeline notifier's (incidents/slack).
func AddWorkers(w *river.Workers, r *RevocationWorker, sw *Sweeper) {
	if r != nil {
		river.AddWorker(w, r)
		river.AddWorker(w, &revocationTester{r: r})
	}
	river.AddWorker(w, sw)
}
