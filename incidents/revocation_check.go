package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// ErrNoQueue: this process has no job queue to send tests through.
var ErrNoQueue = errors.New("this server cannot send test requests: it has no job queue")

// RevocationTestArgs sends one test request to a revocation endpoint, so
// an admin sees, before a real leak, whether the receiver accepts
// Leakwatch's signed calls. At makes every click its own message.
type RevocationTestArgs struct {
	EndpointID  int64     `json:"endpoint_id"`
	RequestedBy string    `json:"requested_by"`
	At          time.Time `json:"at"`
}

// Kind implements river.JobArgs.
func (RevocationTestArgs) Kind() string { return "revocation_test" }

// InsertOpts runs tests once: a failed test is worth a new click, not a
// retry storm against whatever the URL names.
func (RevocationTestArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueIncidents, MaxAttempts: 1}
}

// RevocationTest is the body of a test request. Its type,
// "revocation.test", tells receivers to revoke nothing; they answer as to
// a real request and the answer lands in the delivery log.
type RevocationTest struct {
	Type        string    `json:"type"` // "revocation.test"
	EventID     string    `json:"event_id"`
	Key         *KeyRef   `json:"key,omitempty"` // the endpoint's key; none for the default
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
}

// QueueRevocationTest queues a test request to the organisation's default
// endpoint (keyID 0) or a key's own; ErrNoEndpoint when there is none.
// The job and the revocation_endpoint.test entry by a are inserted in one
// transaction.
func (s *Service) QueueRevocationTest(ctx context.Context, a audit.Actor, orgID, keyID int64) error {
	var id int64
	var key *int64 // NULL: the default
	if keyID > 0 {
		key = &keyID
	}
	err := s.pool.QueryRow(ctx, `SELECT id FROM revocation_endpoints WHERE org_id = $1 AND key_id IS NOT DISTINCT FROM $2`,
		orgID, key).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNoEndpoint
	}
	if err != nil {
		return fmt.Errorf("find revocation endpoint of org %d: %w", orgID, err)
	}
	if s.river == nil {
		return ErrNoQueue
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.river.InsertTx(ctx, tx, RevocationTestArgs{EndpointID: id, RequestedBy: a.Name, At: s.now()}, nil); err != nil {
			return err
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "revocation_endpoint.test", "key", keyID, nil))
	})
	if err != nil {
		return fmt.Errorf("queue revocation test of endpoint %d: %w", id, err)
	}
	return nil
}

// revocationTester works RevocationTestArgs with the revoker's sender.
type revocationTester struct {
	river.WorkerDefaults[RevocationTestArgs]
	r *RevocationWorker
}

// Timeout bounds the one attempt.
func (w *revocationTester) Timeout(*river.Job[RevocationTestArgs]) time.Duration { return time.Minute }

// Work sends the test once (SendTest).
func (w *revocationTester) Work(ctx context.Context, job *river.Job[RevocationTestArgs]) error {
	return w.r.SendTest(ctx, job.Args)
}

// SendTest sends a queued test request once and logs the attempt in the
// endpoint's delivery log: succeeded on a 2xx, failed otherwise.
func (r *RevocationWorker) SendTest(ctx context.Context, a RevocationTestArgs) error {
	s := r.svc
	var url, stored string
	var key KeyRef
	var keyID *int64
	err := s.pool.QueryRow(ctx, `SELECT url, hmac_secret, key_id FROM revocation_endpoints WHERE id = $1`, a.EndpointID).
		Scan(&url, &stored, &keyID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // replaced or removed meanwhile: nothing to test
	}
	if err != nil {
		return fmt.Errorf("load revocation endpoint %d: %w", a.EndpointID, err)
	}
	body := RevocationTest{Type: "revocation.test", EventID: fmt.Sprintf("msg_lwrevtest_%d_%d", a.EndpointID, a.At.UnixNano()),
		RequestedBy: a.RequestedBy, RequestedAt: a.At}
	if keyID != nil {
		// The key's names come from the registry, which owns them.
		k, err := keys.Get(ctx, s.pool, *keyID)
		switch {
		case errors.Is(err, keys.ErrNotFound):
		case err != nil:
			return err
		default:
			key.Name, key.Provider, key.Fingerprint = k.Name, k.Provider, k.Fingerprint
		}
		key.ID = *keyID
		body.Key = &key
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode revocation test: %w", err)
	}
	epID := a.EndpointID
	d, err := webhook.EnsureDelivery(ctx, s.pool, webhook.Delivery{
		MessageID: body.EventID, Kind: "revocation", EndpointID: &epID, URL: url, Payload: payload, CreatedAt: s.now(),
	})
	if err != nil {
		return err
	}
	if d.Status != webhook.StatusPending {
		return nil
	}
	secret, err := s.box.OpenStored(stored)
	if err != nil {
		return fmt.Errorf("open HMAC secret of revocation endpoint %d: %w", a.EndpointID, err)
	}
	res := r.sender.Send(ctx, webhook.Message{ID: d.MessageID, URL: url, Body: d.Payload, HMACSecret: secret})
	status := webhook.StatusFailed
	if res.OK() {
		status = webhook.StatusSucceeded
	}
	r.logger.Info("revocation endpoint tested", slog.Int64("endpoint_id", a.EndpointID), slog.Int("status_code", res.StatusCode))
	return webhook.RecordAttempt(ctx, s.pool, d.ID, s.now(), res, status)
}
