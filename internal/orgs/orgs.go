// Package orgs owns organisations, the tenants of Leakwatch.
package orgs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
	"github.com/leakwatch/leakwatch/matcher"
)

// ErrNotFound is returned when no organisation has the given name or id.
var ErrNotFound = errors.New("organisation not found")

// ErrInvalid wraps a validation failure; its message is safe to show.
var ErrInvalid = errors.New("invalid input")

// Org is a tenant.
type Org struct {
	ID   int64
	Name string
	// SlackConfigured says an incoming-webhook URL is set; the URL is a
	// credential and only incidents/slack opens it.
	SlackConfigured bool
	// DefaultRevocationURL is the revocation endpoint of keys that name none.
	DefaultRevocationURL string
	// DefaultMaxAgeDays is the rotation policy of keys that set none; 0: none.
	DefaultMaxAgeDays int
	CreatedAt         time.Time
}

const selectOrg = `SELECT id, name, slack_webhook_url <> '', default_revocation_url, default_max_age_days, created_at FROM orgs`

func scanOrg(row pgx.Row) (Org, error) {
	var o Org
	err := row.Scan(&o.ID, &o.Name, &o.SlackConfigured, &o.DefaultRevocationURL, &o.DefaultMaxAgeDays, &o.CreatedAt)
	return o, err
}

// Store reads and writes organisations. Every method that changes one
// takes the audit.Actor who makes the change and records it in the
// change's own transaction.
type Store struct {
	pool  *pgxpool.Pool
	box   *secretbox.Box
	guard *webhook.Guard // checks the URLs set (WithGuard)
}

// auditTx records a change of organisation id by a in the change's
// transaction.
func auditTx(ctx context.Context, tx pgx.Tx, a audit.Actor, id int64, action string, details map[string]any) error {
	return audit.Record(ctx, tx, a.Entry(id, action, "org", id, details))
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// WithBox makes the store seal the Slack webhook URLs it writes with box
// (without a configured key they are stored as given).
func (s *Store) WithBox(box *secretbox.Box) *Store {
	s.box = box
	return s
}

// WithGuard makes the store check the URLs it is given against the
// deployment's outgoing-request guard, so a URL no request may reach is
// refused when it is set, not when it is first used.
func (s *Store) WithGuard(g webhook.Guard) *Store {
	s.guard = &g
	return s
}

// Create creates the organisation, or returns the existing one of that name
// (so scripts can run it repeatedly). created reports which happened; only
// a creation is audited (org.create).
func (s *Store) Create(ctx context.Context, a audit.Actor, name string) (org Org, created bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		org, created, err = s.CreateTx(ctx, tx, a, name)
		return err
	})
	if err != nil {
		return Org{}, false, err
	}
	return org, created, nil
}

// Any reports whether at least one organisation exists (a new installation
// has none, and `serve` then says how to create one).
func (s *Store) Any(ctx context.Context) (bool, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM orgs)`).Scan(&exists); err != nil {
		return false, fmt.Errorf("look for organisations: %w", err)
	}
	return exists, nil
}

// ByName returns the organisation called name.
func (s *Store) ByName(ctx context.Context, name string) (Org, error) {
	o, err := scanOrg(s.pool.QueryRow(ctx, selectOrg+` WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Org{}, fmt.Errorf("organisation %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Org{}, fmt.Errorf("read organisation %q: %w", name, err)
	}
	return o, nil
}

// SetSlackWebhook sets the organisation's Slack incoming-webhook URL, sealed
// where a key is configured (anyone holding the URL can post to the
// channel); an empty URL turns Slack alerts off. It is audited like
// Update: org.update, saying only whether a URL is set.
func (s *Store) SetSlackWebhook(ctx context.Context, a audit.Actor, orgID int64, webhookURL string) error {
	if err := s.checkSlackWebhook(webhookURL); err != nil {
		return err
	}
	stored, err := s.box.SealIfConfigured(webhookURL)
	if err != nil {
		return fmt.Errorf("seal slack webhook of organisation %d: %w", orgID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE orgs SET slack_webhook_url = $2 WHERE id = $1`, orgID, stored)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("organisation %d: %w", orgID, ErrNotFound)
		}
		return auditTx(ctx, tx, a, orgID, "org.update", map[string]any{"slack_webhook": webhookURL != ""})
	})
	if err != nil {
		return fmt.Errorf("set slack webhook of organisation %d: %w", orgID, err)
	}
	return nil
}

// checkSlackWebhook checks a Slack incoming-webhook URL against the
// deployment's outgoing-request guard ("" turns Slack off).
func (s *Store) checkSlackWebhook(webhookURL string) error {
	if webhookURL == "" {
		return nil
	}
	if err := s.guard.CheckTarget(webhookURL); err != nil {
		return fmt.Errorf("slack webhook URL: %w", err)
	}
	return nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", errors.New("organisation name must have 1 to 200 characters")
	}
	if err := matcher.CheckFreeText("organisation name", name); err != nil {
		return "", err
	}
	return name, nil
}

// checkKeyDefaults checks the default revocation endpoint (against the
// guard) and the default rotation policy.
func (s *Store) checkKeyDefaults(revocationURL string, maxAgeDays int) error {
	if revocationURL != "" {
		if err := s.guard.CheckTarget(revocationURL); err != nil {
			return fmt.Errorf("default revocation URL: %w", err)
		}
	}
	if maxAgeDays < 0 || maxAgeDays > 36500 {
		return errors.New("default maximum key age must be between 0 and 36500 days")
	}
	return nil
}

// Update is a partial change of an organisation's settings: nil fields
// stay as they are.
type Update struct {
	Name                 *string
	DefaultRevocationURL *string
	DefaultMaxAgeDays    *int
	SlackWebhookURL      *string // a credential: sealed, and audited only as set or cleared
}

// Update validates every field of u first and then applies them all in
// one transaction with their audit entry: a request with one bad field
// changes nothing. Errors wrapping ErrInvalid carry a safe message.
func (s *Store) Update(ctx context.Context, a audit.Actor, id int64, u Update) (Org, error) {
	changed := map[string]any{}
	var name, rev, slackStored string
	var err error
	if u.Name != nil {
		if name, err = checkName(*u.Name); err != nil {
			return Org{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		changed["name"] = name
	}
	if u.DefaultRevocationURL != nil {
		rev = strings.TrimSpace(*u.DefaultRevocationURL)
		if err := s.checkKeyDefaults(rev, 0); err != nil {
			return Org{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		changed["default_revocation_url"] = rev
	}
	if u.DefaultMaxAgeDays != nil {
		if err := s.checkKeyDefaults("", *u.DefaultMaxAgeDays); err != nil {
			return Org{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		changed["default_max_age_days"] = *u.DefaultMaxAgeDays
	}
	if u.SlackWebhookURL != nil {
		hook := strings.TrimSpace(*u.SlackWebhookURL)
		if err := s.checkSlackWebhook(hook); err != nil {
			return Org{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if slackStored, err = s.box.SealIfConfigured(hook); err != nil {
			return Org{}, fmt.Errorf("seal slack webhook of organisation %d: %w", id, err)
		}
		changed["slack_webhook"] = hook != ""
	}
	var o Org
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE orgs SET
				name = CASE WHEN $2 THEN $3 ELSE name END,
				default_revocation_url = CASE WHEN $4 THEN $5 ELSE default_revocation_url END,
				default_max_age_days = CASE WHEN $6 THEN $7 ELSE default_max_age_days END,
				slack_webhook_url = CASE WHEN $8 THEN $9 ELSE slack_webhook_url END
			WHERE id = $1`, id,
			u.Name != nil, name, u.DefaultRevocationURL != nil, rev,
			u.DefaultMaxAgeDays != nil, derefInt(u.DefaultMaxAgeDays), u.SlackWebhookURL != nil, slackStored)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("organisation %d: %w", id, ErrNotFound)
		}
		if len(changed) > 0 {
			if err := auditTx(ctx, tx, a, id, "org.update", changed); err != nil {
				return err
			}
		}
		o, err = scanOrg(tx.QueryRow(ctx, selectOrg+` WHERE id = $1`, id))
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Org{}, ErrNameTaken
	}
	if err != nil {
		return Org{}, fmt.Errorf("update organisation %d: %w", id, err)
	}
	return o, nil
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// ByID returns the organisation with that id.
func (s *Store) ByID(ctx context.Context, id int64) (Org, error) {
	o, err := scanOrg(s.pool.QueryRow(ctx, selectOrg+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Org{}, fmt.Errorf("organisation %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Org{}, fmt.Errorf("read organisation %d: %w", id, err)
	}
	return o, nil
}

// ErrNameTaken is returned when renaming to a name another organisation has.
var ErrNameTaken = errors.New("organisation name already taken")

// Delete deletes the organisation with everything it owns (keys, incidents,
// memberships, tokens). The audit log keeps its record (org.delete), written
// in the deletion's own transaction.
func (s *Store) Delete(ctx context.Context, a audit.Actor, id int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var name string
		err := tx.QueryRow(ctx, `DELETE FROM orgs WHERE id = $1 RETURNING name`, id).Scan(&name)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("organisation %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		return auditTx(ctx, tx, a, id, "org.delete", map[string]any{"name": name})
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete organisation %d: %w", id, err)
	}
	return err
}
