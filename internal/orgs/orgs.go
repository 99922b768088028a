// Package orgs owns organisations, the tenants of Leakwatch.
package orgs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when no organisation has the given name or id.
var ErrNotFound = errors.New("organisation not found")

// Org is a tenant.
type Org struct {
	ID              int64
	Name            string
	SlackWebhookURL string // secret: never log it
	CreatedAt       time.Time
}

// Store reads and writes organisations.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Create creates the organisation, or returns the existing one of that name
// (so scripts can run it repeatedly). created reports which happened.
func (s *Store) Create(ctx context.Context, name string) (org Org, created bool, err error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return Org{}, false, errors.New("organisation name is empty")
	}
	err = s.pool.QueryRow(ctx, `
		INSERT INTO orgs (name) VALUES ($1)
		ON CONFLICT (name) DO NOTHING
		RETURNING id, name, slack_webhook_url, created_at`, name).
		Scan(&org.ID, &org.Name, &org.SlackWebhookURL, &org.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		org, err = s.ByName(ctx, name)
		return org, false, err
	}
	if err != nil {
		return Org{}, false, fmt.Errorf("create organisation %q: %w", name, err)
	}
	return org, true, nil
}

// ByName returns the organisation called name.
func (s *Store) ByName(ctx context.Context, name string) (Org, error) {
	var o Org
	err := s.pool.QueryRow(ctx, `SELECT id, name, slack_webhook_url, created_at FROM orgs WHERE name = $1`, name).
		Scan(&o.ID, &o.Name, &o.SlackWebhookURL, &o.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Org{}, fmt.Errorf("organisation %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Org{}, fmt.Errorf("read organisation %q: %w", name, err)
	}
	return o, nil
}

// SetSlackWebhook sets the organisation's Slack incoming-webhook URL; an empty
// URL turns Slack alerts off.
func (s *Store) SetSlackWebhook(ctx context.Context, orgID int64, webhookURL string) error {
	if webhookURL != "" {
		u, err := url.Parse(webhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errors.New("slack webhook URL must be an absolute http(s) URL")
		}
	}
	tag, err := s.pool.Exec(ctx, `UPDATE orgs SET slack_webhook_url = $2 WHERE id = $1`, orgID, webhookURL)
	if err != nil {
		return fmt.Errorf("set slack webhook of organisation %d: %w", orgID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("organisation %d: %w", orgID, ErrNotFound)
	}
	return nil
}
