package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DBTX is a pool or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// Delivery is one message to one endpoint and its progress.
type Delivery struct {
	ID            int64           `json:"id"`
	MessageID     string          `json:"message_id"`
	Kind          string          `json:"kind"`
	IncidentID    *int64          `json:"incident_id,omitempty"`
	EndpointID    *int64          `json:"endpoint_id,omitempty"`
	Payload       json.RawMessage `json:"payload"`
	Status        string          `json:"status"`
	Attempts      int             `json:"attempts"`
	CreatedAt     time.Time       `json:"created_at"`
	LastAttemptAt *time.Time      `json:"last_attempt_at,omitempty"`
	FinishedAt    *time.Time      `json:"finished_at,omitempty"`
	// URL is deliberately not serialised: it may carry a token.
	URL string `json:"-"`
}

// Attempt is one logged try.
type Attempt struct {
	ID          int64     `json:"id"`
	AttemptedAt time.Time `json:"attempted_at"`
	StatusCode  int       `json:"status_code"`
	LatencyMS   int       `json:"latency_ms"`
	Error       string    `json:"error,omitempty"`
	Response    string    `json:"response,omitempty"`
}

// EnsureDelivery returns the delivery of d.MessageID, creating it from d on
// first use. The message id is the identity: running this again (a retried
// job) returns the same row, created_at and payload included, so retries send
// the very same message.
func EnsureDelivery(ctx context.Context, db DBTX, d Delivery) (Delivery, error) {
	err := db.QueryRow(ctx, `
		INSERT INTO webhook_deliveries (message_id, kind, incident_id, endpoint_id, url, payload, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (message_id) DO UPDATE SET message_id = EXCLUDED.message_id
		RETURNING id, kind, incident_id, endpoint_id, url, payload, status, attempts, created_at, last_attempt_at, finished_at`,
		d.MessageID, d.Kind, d.IncidentID, d.EndpointID, d.URL, d.Payload, d.CreatedAt).
		Scan(&d.ID, &d.Kind, &d.IncidentID, &d.EndpointID, &d.URL, &d.Payload, &d.Status, &d.Attempts, &d.CreatedAt, &d.LastAttemptAt, &d.FinishedAt)
	if err != nil {
		return Delivery{}, fmt.Errorf("ensure delivery %s: %w", d.MessageID, err)
	}
	return d, nil
}

// RecordAttempt logs one attempt and sets the delivery's status (pending
// while it will be retried).
func RecordAttempt(ctx context.Context, db DBTX, deliveryID int64, at time.Time, r Result, status string) error {
	errText := ""
	if r.Err != nil {
		errText = r.Err.Error()
	}
	if _, err := db.Exec(ctx, `
		INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, latency_ms, error, response)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		deliveryID, at, r.StatusCode, int(r.Latency.Milliseconds()), errText, r.Excerpt()); err != nil {
		return fmt.Errorf("log attempt of delivery %d: %w", deliveryID, err)
	}
	var finished *time.Time
	if status != StatusPending {
		finished = &at
	}
	if _, err := db.Exec(ctx, `
		UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $2, status = $3, finished_at = $4
		WHERE id = $1`, deliveryID, at, status, finished); err != nil {
		return fmt.Errorf("update delivery %d: %w", deliveryID, err)
	}
	return nil
}

// Attempts lists a delivery's attempts, oldest first.
func Attempts(ctx context.Context, db DBTX, deliveryID int64) ([]Attempt, error) {
	rows, err := db.Query(ctx, `
		SELECT id, attempted_at, status_code, latency_ms, error, response
		FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("list attempts of delivery %d: %w", deliveryID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.ID, &a.AttemptedAt, &a.StatusCode, &a.LatencyMS, &a.Error, &a.Response)
		return a, err
	})
}

// DeliveriesForIncident lists an incident's deliveries, oldest first.
func DeliveriesForIncident(ctx context.Context, db DBTX, incidentID int64) ([]Delivery, error) {
	rows, err := db.Query(ctx, `
		SELECT id, message_id, kind, incident_id, endpoint_id, url, payload, status, attempts, created_at, last_attempt_at, finished_at
		FROM webhook_deliveries WHERE incident_id = $1 ORDER BY id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of incident %d: %w", incidentID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		err := r.Scan(&d.ID, &d.MessageID, &d.Kind, &d.IncidentID, &d.EndpointID, &d.URL, &d.Payload, &d.Status, &d.Attempts, &d.CreatedAt, &d.LastAttemptAt, &d.FinishedAt)
		return d, err
	})
}

// DeliveriesForEndpoint lists the newest deliveries of kind to one
// endpoint (an event webhook subscription, a revocation endpoint), at most
// limit, newest first: the integrations page's delivery log. The caller
// checks that the endpoint is its organisation's.
func DeliveriesForEndpoint(ctx context.Context, db DBTX, kind string, endpointID int64, limit int) ([]Delivery, error) {
	rows, err := db.Query(ctx, `
		SELECT id, message_id, kind, incident_id, endpoint_id, url, payload, status, attempts, created_at, last_attempt_at, finished_at
		FROM webhook_deliveries WHERE kind = $1 AND endpoint_id = $2 ORDER BY id DESC LIMIT $3`, kind, endpointID, limit)
	if err != nil {
		return nil, fmt.Errorf("list %s deliveries of endpoint %d: %w", kind, endpointID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		err := r.Scan(&d.ID, &d.MessageID, &d.Kind, &d.IncidentID, &d.EndpointID, &d.URL, &d.Payload, &d.Status, &d.Attempts, &d.CreatedAt, &d.LastAttemptAt, &d.FinishedAt)
		return d, err
	})
}
