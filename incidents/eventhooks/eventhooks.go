// Package eventhooks delivers incident events to the webhook subscriptions
// of an organisation (SIEMs, PagerDuty or Opsgenie bridges): any number of
// URLs, each with an event filter, signed, retried, de-duplicated and
// logged by the shared machinery of internal/platform/webhook (Standard Webhooks
// signatures, SSRF guard, backoff, webhook_deliveries log) exactly as
// revocation requests are.
//
// Events come from the incidents timeline through the TimelineNotifier
// hook: Notifier.TimelineEventTx queues one Deliver job per matching
// subscription in the entry's transaction. The message id
// ("msg_lwevt_ENTRY_SUBSCRIPTION") is stable across retries, so receivers
// de-duplicate by webhook-id.
//
// Payloads are plain JSON data: the leak's repository, path, actor and URL
// are attacker-controlled strings and are passed as such, never as markup.
package eventhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// Event types.
const (
	EventIncidentOpened       = "incident.opened"
	EventIncidentPhaseChanged = "incident.phase_changed"
	EventIncidentEscalated    = "incident.escalated"
	EventKeyStale             = "key.stale"
	EventOccurrenceAdded      = "occurrence.added"
)

// Events lists the event types a subscription may filter on.
var Events = []string{EventIncidentOpened, EventIncidentPhaseChanged, EventIncidentEscalated, EventOccurrenceAdded, EventKeyStale, EventDigestWeekly}

// Errors.
var (
	ErrNotFound = errors.New("webhook subscription not found")
	ErrInvalid  = errors.New("invalid webhook subscription")
)

// eventType maps a timeline entry to its event, "" for entries not sent.
func eventType(kind, from, to string) string {
	switch {
	case kind == "opened":
		return EventIncidentOpened
	case kind == "escalated" || kind == "containment_failed":
		return EventIncidentEscalated
	case to != "" && from != to:
		return EventIncidentPhaseChanged
	}
	return ""
}

// Subscription is one webhook subscription. The HMAC secret is shown once,
// at creation.
type Subscription struct {
	ID        int64     `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
}

// Store keeps subscriptions; HMAC secrets are sealed when box is
// configured.
type Store struct {
	pool  *pgxpool.Pool
	box   *secretbox.Box
	guard *webhook.Guard // checks the URLs set (WithGuard)
}

// WithGuard makes the store refuse URLs the deployment's outgoing-request
// guard would never reach, when they are set. It returns s.
func (s *Store) WithGuard(g webhook.Guard) *Store {
	s.guard = &g
	return s
}

// NewStore returns a Store.
func NewStore(pool *pgxpool.Pool, box *secretbox.Box) *Store { return &Store{pool: pool, box: box} }

// Create subscribes url to events (empty: all) and returns the
// subscription and its new HMAC secret ("whsec_…"), shown only now. It is
// audited (webhook.subscribe, the URL's host only: the URL may carry a
// token) in its transaction.
func (s *Store) Create(ctx context.Context, a audit.Actor, orgID int64, rawURL string, events []string) (Subscription, string, error) {
	rawURL = strings.TrimSpace(rawURL)
	// Checked now against the deployment's guard (WithGuard), and again
	// on the address dialled at delivery time.
	if err := s.guard.CheckTarget(rawURL); err != nil {
		return Subscription{}, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if events == nil {
		events = []string{}
	}
	for _, e := range events {
		if !slices.Contains(Events, e) {
			return Subscription{}, "", fmt.Errorf("%w: unknown event %q (known: %s)", ErrInvalid, e, strings.Join(Events, ", "))
		}
	}
	secret, err := webhook.GenerateSecret()
	if err != nil {
		return Subscription{}, "", err
	}
	stored := secret
	if s.box.Configured() {
		if stored, err = s.box.Seal(secret); err != nil {
			return Subscription{}, "", err
		}
	}
	sub := Subscription{URL: rawURL, Events: events, Enabled: true}
	// The URL may carry a token: the audit log keeps only its host.
	host := rawURL
	if _, rest, ok := strings.Cut(host, "://"); ok {
		host, _, _ = strings.Cut(rest, "/")
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO event_webhooks (org_id, url, hmac_secret, events) VALUES ($1, $2, $3, $4) RETURNING id, created_at`,
			orgID, rawURL, stored, events).Scan(&sub.ID, &sub.CreatedAt)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "webhook.subscribe", "event_webhook", sub.ID, map[string]any{"host": host, "events": events}))
	})
	if err != nil {
		return Subscription{}, "", fmt.Errorf("create webhook subscription: %w", err)
	}
	return sub, secret, nil
}

// List returns the organisation's subscriptions.
func (s *Store) List(ctx context.Context, orgID int64) ([]Subscription, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, url, events, enabled, created_at FROM event_webhooks WHERE org_id = $1 ORDER BY id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list webhook subscriptions: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscription, error) {
		var sub Subscription
		return sub, r.Scan(&sub.ID, &sub.URL, &sub.Events, &sub.Enabled, &sub.CreatedAt)
	})
}

// Delete removes a subscription of the organisation, audited
// (webhook.unsubscribe) in its transaction.
func (s *Store) Delete(ctx context.Context, a audit.Actor, orgID, id int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM event_webhooks WHERE id = $1 AND org_id = $2`, id, orgID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("subscription %d: %w", id, ErrNotFound)
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "webhook.unsubscribe", "event_webhook", id, nil))
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("delete webhook subscription %d: %w", id, err)
	}
	return nil
}

// Delivery is one message to a subscription with each of its attempts.
type Delivery struct {
	webhook.Delivery
	AttemptLog []webhook.Attempt `json:"attempt_log"`
}

// Deliveries returns a subscription of the organisation with its newest
// deliveries (at most limit), each with its attempts: what an admin reads
// to see whether their receiver accepts Leakwatch's calls. Another
// organisation's subscription is ErrNotFound.
func (s *Store) Deliveries(ctx context.Context, orgID, id int64, limit int) (Subscription, []Delivery, error) {
	var sub Subscription
	err := s.pool.QueryRow(ctx, `SELECT id, url, events, enabled, created_at FROM event_webhooks WHERE id = $1 AND org_id = $2`, id, orgID).
		Scan(&sub.ID, &sub.URL, &sub.Events, &sub.Enabled, &sub.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return sub, nil, fmt.Errorf("subscription %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return sub, nil, fmt.Errorf("load webhook subscription %d: %w", id, err)
	}
	dels, err := webhook.DeliveriesForEndpoint(ctx, s.pool, "event", id, limit)
	if err != nil {
		return sub, nil, err
	}
	out := make([]Delivery, 0, len(dels))
	for _, d := range dels {
		as, err := webhook.Attempts(ctx, s.pool, d.ID)
		if err != nil {
			return sub, nil, err
		}
		out = append(out, Delivery{Delivery: d, AttemptLog: as})
	}
	return sub, out, nil
}

func (s *Store) openSecret(v string) (string, error) {
	if !strings.HasPrefix(v, "lwsb1:") {
		return v, nil // stored before an encryption key was configured
	}
	return s.box.Open(v)
}

// DeliverArgs delivers one timeline entry to one subscription.
type DeliverArgs struct {
	SubscriptionID int64  `json:"subscription_id" river:"unique"`
	EventID        int64  `json:"event_id" river:"unique"`
	Type           string `json:"type"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "event_webhook" }

// InsertOpts puts deliveries on the notify queue, once per entry and
// subscription.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueNotify, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Notifier queues deliveries from the incidents timeline.
type Notifier struct {
	river *jobs.Client
}

// NewNotifier returns the timeline hook; see incidents.TimelineNotifier.
func NewNotifier(riverClient *jobs.Client) *Notifier { return &Notifier{river: riverClient} }

// subscribersTx returns the enabled subscriptions of the incident's
// organisation that want events of type typ.
func subscribersTx(ctx context.Context, tx pgx.Tx, incidentID int64, typ string) ([]int64, error) {
	// read-only join: runs in the incident's uncommitted transaction (the
	// notifier hook), where only tx sees a just-opened incident's org.
	rows, err := tx.Query(ctx, `
		SELECT w.id FROM event_webhooks w JOIN incidents i ON i.org_id = w.org_id
		WHERE i.id = $1 AND w.enabled AND (w.events = '{}' OR $2 = ANY (w.events)) ORDER BY w.id`, incidentID, typ)
	if err != nil {
		return nil, fmt.Errorf("find webhook subscriptions: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("find webhook subscriptions: %w", err)
	}
	return ids, nil
}

// TimelineEventTx queues a delivery to every enabled subscription of the
// incident's organisation that wants the entry's event.
func (n *Notifier) TimelineEventTx(ctx context.Context, tx pgx.Tx, incidentID, eventID int64, kind string) error {
	var from, to string
	// read-only join: the entry is not committed yet; only tx sees it.
	if err := tx.QueryRow(ctx, `SELECT from_phase, to_phase FROM incident_events WHERE id = $1`, eventID).Scan(&from, &to); err != nil {
		return fmt.Errorf("load timeline entry %d: %w", eventID, err)
	}
	typ := eventType(kind, from, to)
	if typ == "" {
		return nil
	}
	ids, err := subscribersTx(ctx, tx, incidentID, typ)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := n.river.InsertTx(ctx, tx, DeliverArgs{SubscriptionID: id, EventID: eventID, Type: typ}, nil); err != nil {
			return fmt.Errorf("queue event webhook: %w", err)
		}
	}
	return nil
}

// Payload is the JSON body of an event webhook.
type Payload struct {
	Type      string    `json:"type"`
	ID        string    `json:"id"` // the webhook-id
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data is what happened, to which incident.
type Data struct {
	IncidentID int64          `json:"incident_id"`
	OrgID      int64          `json:"org_id"`
	Severity   string         `json:"severity"`
	Phase      string         `json:"phase"`
	FromPhase  string         `json:"from_phase,omitempty"`
	ToPhase    string         `json:"to_phase,omitempty"`
	Entry      string         `json:"entry"` // the timeline entry's kind
	Actor      string         `json:"actor"`
	Details    map[string]any `json:"details,omitempty"`
	Key        Key            `json:"key"`
	Leak       Leak           `json:"leak"`
	URL        string         `json:"url,omitempty"` // the incident in Leakwatch
}

// Key names the leaked key, never its secret.
type Key struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Provider    string `json:"provider"`
	Environment string `json:"environment"`
	Fingerprint string `json:"fingerprint"`
}

// Leak is where the key was first seen; every field is attacker-controlled.
type Leak struct {
	Source     string     `json:"source"`
	URL        string     `json:"url"`
	Repo       string     `json:"repo"`
	Path       string     `json:"path"`
	Line       int        `json:"line"`
	Actor      string     `json:"actor"`
	EventAt    *time.Time `json:"event_at,omitempty"`
	DetectedAt time.Time  `json:"detected_at"`
}

// Worker delivers DeliverArgs.
type Worker struct {
	river.WorkerDefaults[DeliverArgs]
	pool      *pgxpool.Pool
	store     *Store
	incidents Incidents
	sender    *webhook.Sender
	baseURL   string
	logger    *slog.Logger
	now       func() time.Time
}

// Incidents is what a payload reads of the incidents it describes
// (incidents.Service).
type Incidents interface {
	EntrySnapshot(ctx context.Context, eventID int64) (incidents.Snapshot, incidents.Event, error)
	OccurrenceSnapshot(ctx context.Context, occurrenceID int64) (incidents.Snapshot, error)
}

// dataOf is the payload's description of a snapshot.
func dataOf(sn incidents.Snapshot) Data {
	l := sn.Sighting
	return Data{IncidentID: sn.IncidentID, OrgID: sn.OrgID, Severity: sn.Severity, Phase: sn.Phase,
		Key:  Key{ID: sn.KeyID, Name: sn.KeyName, Provider: sn.Provider, Environment: sn.Environment, Fingerprint: sn.Fingerprint},
		Leak: Leak{Source: l.Source, URL: l.URL, Repo: l.Repo, Path: l.Path, Line: l.Line, Actor: l.Actor, EventAt: l.EventAt, DetectedAt: l.DetectedAt}}
}

// NewWorker returns the delivery worker; inc describes the incidents and
// sender is the shared webhook.Sender (guarded client, Ed25519 key).
func NewWorker(pool *pgxpool.Pool, store *Store, inc Incidents, sender *webhook.Sender, baseURL string, logger *slog.Logger) *Worker {
	return &Worker{pool: pool, store: store, incidents: inc, sender: sender, baseURL: strings.TrimRight(baseURL, "/"), logger: logger, now: time.Now}
}

// Timeout bounds one attempt.
func (w *Worker) Timeout(*river.Job[DeliverArgs]) time.Duration { return time.Minute }

// subscription is what a delivery job needs of its subscription.
type subscription struct {
	orgID  int64
	url    string
	secret string
}

// subscription loads a subscription for a delivery. ok is false, with no
// error, when it was deleted or disabled meanwhile (nothing to deliver); a
// secret that no configured key opens cancels the job, as retries cannot help.
func (w *Worker) subscription(ctx context.Context, id int64) (subscription, bool, error) {
	var sub subscription
	var stored string
	var enabled bool
	err := w.pool.QueryRow(ctx, `SELECT org_id, url, hmac_secret, enabled FROM event_webhooks WHERE id = $1`, id).
		Scan(&sub.orgID, &sub.url, &stored, &enabled)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !enabled) {
		return sub, false, nil
	}
	if err != nil {
		return sub, false, fmt.Errorf("load subscription %d: %w", id, err)
	}
	if sub.secret, err = w.store.openSecret(stored); err != nil {
		return sub, false, river.JobCancel(fmt.Errorf("open secret of subscription %d: %w", id, err))
	}
	return sub, true, nil
}

// Work makes one attempt; failures are retried by snoozing with the shared
// backoff for up to webhook.GiveUpAfter, then the delivery is failed.
func (w *Worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	a := job.Args
	sub, ok, err := w.subscription(ctx, a.SubscriptionID)
	if !ok || err != nil {
		return err
	}
	url, secret := sub.url, sub.secret
	msgID := fmt.Sprintf("msg_lwevt_%d_%d", a.EventID, a.SubscriptionID)
	now := w.now()
	p := Payload{Type: a.Type, ID: msgID, Timestamp: now}
	sn, e, err := w.incidents.EntrySnapshot(ctx, a.EventID)
	if errors.Is(err, incidents.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("timeline entry %d no longer exists", a.EventID))
	}
	if err != nil {
		return err
	}
	incidentID := sn.IncidentID
	p.Data = dataOf(sn)
	p.Data.FromPhase, p.Data.ToPhase, p.Data.Entry, p.Data.Actor, p.Data.Details = e.FromPhase, e.ToPhase, e.Kind, e.Actor, e.Details
	if w.baseURL != "" {
		p.Data.URL = fmt.Sprintf("%s/incidents#incident-%d", w.baseURL, incidentID)
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode event webhook: %w", err)
	}
	return w.deliver(ctx, a.SubscriptionID, url, secret, msgID, a.Type, &incidentID, body, now)
}

// deliver makes one attempt of a message through the shared machinery and
// decides what River does next.
func (w *Worker) deliver(ctx context.Context, subID int64, url, secret, msgID, typ string, incidentID *int64, body []byte, now time.Time) error {
	d, err := webhook.EnsureDelivery(ctx, w.pool, webhook.Delivery{
		MessageID: msgID, Kind: "event", IncidentID: incidentID, EndpointID: &subID, URL: url, Payload: body, CreatedAt: now,
	})
	if err != nil {
		return err
	}
	if d.Status != webhook.StatusPending {
		return nil
	}
	// Retries send the very payload of the first attempt (EnsureDelivery
	// keeps it), so the signature covers the same bytes.
	res := w.sender.Send(ctx, webhook.Message{ID: d.MessageID, URL: url, Body: d.Payload, HMACSecret: secret})
	now = w.now()
	log := w.logger.With(slog.Int64("subscription_id", subID), slog.String("webhook_id", d.MessageID), slog.Int("attempt", d.Attempts+1))
	switch {
	case res.OK():
		log.Info("event webhook delivered", slog.String("type", typ))
		return webhook.RecordAttempt(ctx, w.pool, d.ID, now, res, webhook.StatusSucceeded)
	case errors.Is(res.Err, webhook.ErrForbiddenAddress) || res.StatusCode == http.StatusGone:
		log.Warn("event webhook refused for good")
		return webhook.RecordAttempt(ctx, w.pool, d.ID, now, res, webhook.StatusFailed)
	}
	wait := webhook.Backoff(d.Attempts + 1)
	if now.Add(wait).Sub(d.CreatedAt) > webhook.GiveUpAfter {
		log.Warn("event webhook never accepted; giving up")
		return webhook.RecordAttempt(ctx, w.pool, d.ID, now, res, webhook.StatusFailed)
	}
	if err := webhook.RecordAttempt(ctx, w.pool, d.ID, now, res, webhook.StatusPending); err != nil {
		return err
	}
	log.Info("event webhook not accepted; retrying", slog.Int("status_code", res.StatusCode), slog.Duration("wait", wait))
	return river.JobSnooze(wait)
}

// Reseal re-encrypts every subscription's HMAC secret under the current
// encryption key (step 2 of a key rotation; secrets stored before a key was
// configured are sealed now) and returns how many changed.
func (s *Store) Reseal(ctx context.Context) (int, error) {
	if !s.box.Configured() {
		return 0, secretbox.ErrNoKey
	}
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ids, err := secretbox.ResealRows[int64](ctx, tx, s.box,
			`SELECT id, hmac_secret FROM event_webhooks WHERE hmac_secret <> '' ORDER BY id FOR UPDATE`,
			`UPDATE event_webhooks SET hmac_secret = $2 WHERE id = $1`)
		n = len(ids)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reseal webhook secrets: %w", err)
	}
	return n, nil
}
