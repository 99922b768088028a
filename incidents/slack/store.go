package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
)

// Errors.
var (
	// ErrNotConnected is returned when an organisation has no Slack
	// connection able to do what was asked.
	ErrNotConnected = errors.New("Slack is not connected for this organisation")
	// ErrInvalid is returned for connection settings that cannot work.
	ErrInvalid = errors.New("invalid Slack settings")
)

// Connection modes.
const (
	ModeNone    = ""
	ModeBot     = "bot"     // bot token: living messages, threads, buttons
	ModeWebhook = "webhook" // incoming webhook: plain posts, no interactivity
)

// Route says where incidents of one severity go.
type Route struct {
	Channel    string `json:"channel,omitempty"`     // "" : the default channel
	Mention    string `json:"mention,omitempty"`     // "here", "channel" or ""
	DigestOnly bool   `json:"digest_only,omitempty"` // no alert, only the weekly digest
}

// Connection is an organisation's Slack connection, secrets opened. It is
// never serialised as is: BotToken, SigningSecret and WebhookURL are secrets.
type Connection struct {
	OrgID         int64
	Mode          string
	BotToken      string
	SigningSecret string
	WebhookURL    string
	// EscalationWebhookURL, if set, receives escalations in webhook mode
	// (incident_settings.escalation_slack_url).
	EscalationWebhookURL string
	TokenHint            string
	DefaultChannel       string
	EscalationChannel    string
	Routes               map[string]Route
	BrokenAt             *time.Time
	BrokenReason         string
}

// DefaultRoute is the route of a severity that has none configured:
// critical incidents mention @here, and every severity goes to the default
// channel. A form that shows every severity stores only routes that differ.
func DefaultRoute(severity string) Route {
	if severity == "critical" {
		return Route{Mention: "here"}
	}
	return Route{}
}

// Route returns the route of a severity (DefaultRoute unless configured),
// its channel filled with the default channel when it names none.
func (c Connection) Route(severity string) Route {
	r, ok := c.Routes[severity]
	if !ok {
		r = DefaultRoute(severity)
	}
	if r.Channel == "" {
		r.Channel = c.DefaultChannel
	}
	return r
}

// ConnectParams configures a bot-token connection.
type ConnectParams struct {
	BotToken          string           `json:"bot_token"`
	SigningSecret     string           `json:"signing_secret"`
	DefaultChannel    string           `json:"default_channel"`
	EscalationChannel string           `json:"escalation_channel"`
	Routes            map[string]Route `json:"routes"`
}

var (
	channelPattern  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[CGD][A-Z0-9]{2,20}$`) })
	severityNames   = map[string]bool{"critical": true, "high": true, "medium": true, "low": true}
	mentionNames    = map[string]bool{"": true, "here": true, "channel": true}
	botTokenPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^xox[bp]-[A-Za-z0-9-]{8,250}$`) })
)

func (p ConnectParams) validate() error {
	if !botTokenPattern().MatchString(p.BotToken) {
		return fmt.Errorf("%w: bot_token must be a Slack bot token (xoxb-…)", ErrInvalid)
	}
	if len(p.SigningSecret) < 16 || len(p.SigningSecret) > 200 {
		return fmt.Errorf("%w: signing_secret must be the app's signing secret", ErrInvalid)
	}
	if !channelPattern().MatchString(p.DefaultChannel) {
		return fmt.Errorf("%w: default_channel must be a channel id (C…)", ErrInvalid)
	}
	if p.EscalationChannel != "" && !channelPattern().MatchString(p.EscalationChannel) {
		return fmt.Errorf("%w: escalation_channel must be a channel id (C…)", ErrInvalid)
	}
	for sev, r := range p.Routes {
		if !severityNames[sev] {
			return fmt.Errorf("%w: routes: unknown severity %q", ErrInvalid, sev)
		}
		if r.Channel != "" && !channelPattern().MatchString(r.Channel) {
			return fmt.Errorf("%w: routes.%s.channel must be a channel id", ErrInvalid, sev)
		}
		if !mentionNames[r.Mention] {
			return fmt.Errorf("%w: routes.%s.mention must be here, channel or empty", ErrInvalid, sev)
		}
	}
	return nil
}

// Store keeps Slack connections, with their secrets sealed.
type Store struct {
	pool *pgxpool.Pool
	box  *secretbox.Box
}

// NewStore returns a Store sealing secrets with box.
func NewStore(pool *pgxpool.Pool, box *secretbox.Box) *Store {
	return &Store{pool: pool, box: box}
}

// Connect stores (or replaces) the organisation's bot-token connection and
// clears any broken mark, recording slack.connect by a in the same
// transaction (the channels and the severities routed, never a secret).
func (s *Store) Connect(ctx context.Context, a audit.Actor, orgID int64, p ConnectParams) error {
	p.BotToken, p.SigningSecret = strings.TrimSpace(p.BotToken), strings.TrimSpace(p.SigningSecret)
	if err := p.validate(); err != nil {
		return err
	}
	tok, err := s.box.Seal(p.BotToken)
	if err != nil {
		return fmt.Errorf("seal bot token: %w", err)
	}
	sec, err := s.box.Seal(p.SigningSecret)
	if err != nil {
		return fmt.Errorf("seal signing secret: %w", err)
	}
	routes := p.Routes
	if routes == nil {
		routes = map[string]Route{}
	}
	rj, err := json.Marshal(routes)
	if err != nil {
		return fmt.Errorf("encode routes: %w", err)
	}
	routed := slices.Sorted(maps.Keys(routes))
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
		INSERT INTO slack_connections (org_id, bot_token, signing_secret, token_hint, default_channel, escalation_channel, routes)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (org_id) DO UPDATE SET bot_token = EXCLUDED.bot_token, signing_secret = EXCLUDED.signing_secret,
			token_hint = EXCLUDED.token_hint, default_channel = EXCLUDED.default_channel,
			escalation_channel = EXCLUDED.escalation_channel, routes = EXCLUDED.routes,
			broken_at = NULL, broken_reason = '', updated_at = now()`,
			orgID, tok, sec, secretbox.Hint(p.BotToken), p.DefaultChannel, p.EscalationChannel, rj)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "slack.connect", "org", orgID, map[string]any{
			"default_channel": p.DefaultChannel, "escalation_channel": p.EscalationChannel, "routes": routed,
		}))
	})
	if err != nil {
		return fmt.Errorf("store Slack connection of org %d: %w", orgID, err)
	}
	return nil
}

// Disconnect removes the bot-token connection (the incoming webhook, if
// any, stays), recording slack.disconnect by a in the same transaction.
func (s *Store) Disconnect(ctx context.Context, a audit.Actor, orgID int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM slack_connections WHERE org_id = $1`, orgID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "slack.disconnect", "org", orgID, nil))
	})
	if err != nil {
		return fmt.Errorf("delete Slack connection of org %d: %w", orgID, err)
	}
	return nil
}

// Connection returns the organisation's connection, secrets opened. An
// organisation with neither a bot token nor a webhook has Mode ModeNone.
func (s *Store) Connection(ctx context.Context, orgID int64) (Connection, error) {
	c := Connection{OrgID: orgID, Routes: map[string]Route{}}
	var tok, sec string
	var routes []byte
	// read-only join: a connection is ours (slack_connections) plus the
	// Slack URLs kept by their owners, orgs (the incoming webhook) and
	// incidents (the escalation webhook), read in one snapshot.
	err := s.pool.QueryRow(ctx, `
		SELECT o.slack_webhook_url, coalesce(c.bot_token, ''), coalesce(c.signing_secret, ''), coalesce(c.token_hint, ''),
			coalesce(c.default_channel, ''), coalesce(c.escalation_channel, ''), coalesce(c.routes, '{}'),
			c.broken_at, coalesce(c.broken_reason, ''),
			coalesce((SELECT escalation_slack_url FROM incident_settings WHERE org_id = o.id), '')
		FROM orgs o LEFT JOIN slack_connections c ON c.org_id = o.id WHERE o.id = $1`, orgID).
		Scan(&c.WebhookURL, &tok, &sec, &c.TokenHint, &c.DefaultChannel, &c.EscalationChannel, &routes, &c.BrokenAt, &c.BrokenReason, &c.EscalationWebhookURL)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("org %d: %w", orgID, ErrNotConnected)
	}
	if err != nil {
		return c, fmt.Errorf("load Slack connection of org %d: %w", orgID, err)
	}
	if err := json.Unmarshal(routes, &c.Routes); err != nil {
		return c, fmt.Errorf("decode routes of org %d: %w", orgID, err)
	}
	if c.BotToken, err = s.box.Open(tok); err != nil {
		return c, fmt.Errorf("open bot token of org %d: %w", orgID, err)
	}
	if c.SigningSecret, err = s.box.Open(sec); err != nil {
		return c, fmt.Errorf("open signing secret of org %d: %w", orgID, err)
	}
	// Webhook URLs are sealed where a key was configured when they were set.
	if c.WebhookURL, err = s.box.OpenStored(c.WebhookURL); err != nil {
		return c, fmt.Errorf("open webhook URL of org %d: %w", orgID, err)
	}
	if c.EscalationWebhookURL, err = s.box.OpenStored(c.EscalationWebhookURL); err != nil {
		return c, fmt.Errorf("open escalation webhook URL of org %d: %w", orgID, err)
	}
	switch {
	case c.BotToken != "":
		c.Mode = ModeBot
	case c.WebhookURL != "":
		c.Mode = ModeWebhook
	}
	return c, nil
}

// MarkBroken records that Slack refused the connection's token (revoked,
// invalid), so the integrations API can show it; Connect clears it.
func (s *Store) MarkBroken(ctx context.Context, orgID int64, reason string) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE slack_connections SET broken_at = coalesce(broken_at, now()), broken_reason = $2 WHERE org_id = $1`, orgID, reason)
	if err != nil {
		return fmt.Errorf("mark Slack connection of org %d broken: %w", orgID, err)
	}
	return nil
}

// ResealTx re-encrypts, in tx, a Slack URL another package owns and
// returns the organisations changed: orgs.ResealSlackWebhooksTx (the
// incoming webhook) and incidents.Service.ResealEscalationSlackURLTx.
type ResealTx func(ctx context.Context, tx pgx.Tx) ([]int64, error)

// Reseal re-encrypts every stored secret under the current encryption key
// (step 2 of a key rotation): the connections' own, and, in the same
// transaction, the Slack URLs their owners keep (owned, see ResealTx). It
// returns how many organisations' Slack secrets changed.
func (s *Store) Reseal(ctx context.Context, owned ...ResealTx) (int, error) {
	changed := map[int64]bool{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, reseal := range owned {
			orgs, err := reseal(ctx, tx)
			if err != nil {
				return err
			}
			for _, org := range orgs {
				changed[org] = true
			}
		}
		return s.resealConnections(ctx, tx, changed)
	})
	if err != nil {
		return 0, fmt.Errorf("reseal Slack secrets: %w", err)
	}
	return len(changed), nil
}

// resealConnections re-seals the bot tokens and signing secrets, adding the
// organisations whose secrets changed to changed.
func (s *Store) resealConnections(ctx context.Context, tx pgx.Tx, changed map[int64]bool) error {
	rows, err := tx.Query(ctx, `SELECT org_id, bot_token, signing_secret FROM slack_connections FOR UPDATE`)
	if err != nil {
		return err
	}
	type row struct {
		org      int64
		tok, sec string
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.org, &x.tok, &x.sec)
	})
	if err != nil {
		return err
	}
	for _, x := range all {
		tok, c1, err := s.box.Reseal(x.tok)
		if err != nil {
			return fmt.Errorf("org %d bot token: %w", x.org, err)
		}
		sec, c2, err := s.box.Reseal(x.sec)
		if err != nil {
			return fmt.Errorf("org %d signing secret: %w", x.org, err)
		}
		if !c1 && !c2 {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE slack_connections SET bot_token = $2, signing_secret = $3 WHERE org_id = $1`, x.org, tok, sec); err != nil {
			return err
		}
		changed[x.org] = true
	}
	return nil
}
