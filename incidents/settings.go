package incidents

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// ErrInvalidSettings is returned for out-of-range workflow settings.
var ErrInvalidSettings = errors.New("invalid incident settings")

// Settings are an organisation's workflow limits: how long an incident of
// each severity may stay unacknowledged before it is escalated, how long it
// may stay in one phase before a reminder, where escalations go and who is
// assigned new incidents.
type Settings struct {
	AckCriticalS       int    `json:"ack_critical_seconds"`
	AckHighS           int    `json:"ack_high_seconds"`
	AckMediumS         int    `json:"ack_medium_seconds"`
	AckLowS            int    `json:"ack_low_seconds"`
	PhaseLimitS        int    `json:"phase_limit_seconds"`
	DefaultAssigneeID  *int64 `json:"default_assignee_id"`
	EscalationSlackURL string `json:"escalation_slack_url,omitempty"` // write-only: never returned
	// EscalationConfigured tells whether an escalation webhook is set.
	EscalationConfigured bool `json:"escalation_configured"`
}

// DefaultSettings are the limits of an organisation that set none.
func DefaultSettings() Settings {
	return Settings{
		AckCriticalS: int(DefaultAckCritical.Seconds()), AckHighS: int(DefaultAckHigh.Seconds()),
		AckMediumS: int(DefaultAckMedium.Seconds()), AckLowS: int(DefaultAckLow.Seconds()),
		PhaseLimitS: int(DefaultPhaseLimit.Seconds()),
	}
}

// Settings returns the organisation's settings (the defaults if unset). The
// escalation URL is not returned: it is a credential.
func (s *Service) Settings(ctx context.Context, orgID int64) (Settings, error) {
	return readSettings(ctx, s.pool, orgID)
}

func readSettings(ctx context.Context, db interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, orgID int64) (Settings, error) {
	st := DefaultSettings()
	err := db.QueryRow(ctx, `
		SELECT ack_critical_s, ack_high_s, ack_medium_s, ack_low_s, phase_limit_s, default_assignee_id, escalation_slack_url <> ''
		FROM incident_settings WHERE org_id = $1`, orgID).
		Scan(&st.AckCriticalS, &st.AckHighS, &st.AckMediumS, &st.AckLowS, &st.PhaseLimitS, &st.DefaultAssigneeID, &st.EscalationConfigured)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("load incident settings of org %d: %w", orgID, err)
	}
	return st, nil
}

// SetSettings replaces the organisation's settings. Every limit must lie
// between one minute and 30 days; an empty escalation URL keeps the current
// one unless clearEscalation is set. The change is audited as
// incident_settings.update, with the settings it leaves (the escalation URL
// only as configured or not: it is a credential), in its transaction.
func (s *Service) SetSettings(ctx context.Context, a audit.Actor, orgID int64, st Settings, clearEscalation bool) (Settings, error) {
	for name, v := range map[string]int{"ack_critical_seconds": st.AckCriticalS, "ack_high_seconds": st.AckHighS,
		"ack_medium_seconds": st.AckMediumS, "ack_low_seconds": st.AckLowS, "phase_limit_seconds": st.PhaseLimitS} {
		if v < 60 || time.Duration(v)*time.Second > 30*24*time.Hour {
			return Settings{}, fmt.Errorf("%w: %s must be from 60 to 2592000", ErrInvalidSettings, name)
		}
	}
	if st.EscalationSlackURL != "" {
		if err := s.guard.CheckTarget(st.EscalationSlackURL); err != nil {
			return Settings{}, fmt.Errorf("%w: escalation_slack_url: %w", ErrInvalidSettings, err)
		}
		if u, err := url.Parse(st.EscalationSlackURL); err != nil || u.Scheme != "https" {
			return Settings{}, fmt.Errorf("%w: escalation_slack_url: %w: must be an https URL", ErrInvalidSettings, webhook.ErrInvalidURL)
		}
	}
	// The URL is a credential: sealed where a key is configured.
	escalation, err := s.box.SealIfConfigured(st.EscalationSlackURL)
	if err != nil {
		return Settings{}, fmt.Errorf("seal escalation URL of org %d: %w", orgID, err)
	}
	var out Settings
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
		INSERT INTO incident_settings (org_id, ack_critical_s, ack_high_s, ack_medium_s, ack_low_s, phase_limit_s, default_assignee_id, escalation_slack_url)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (org_id) DO UPDATE SET
			ack_critical_s = EXCLUDED.ack_critical_s, ack_high_s = EXCLUDED.ack_high_s, ack_medium_s = EXCLUDED.ack_medium_s,
			ack_low_s = EXCLUDED.ack_low_s, phase_limit_s = EXCLUDED.phase_limit_s, default_assignee_id = EXCLUDED.default_assignee_id,
			escalation_slack_url = CASE WHEN $9 THEN '' WHEN EXCLUDED.escalation_slack_url = '' THEN incident_settings.escalation_slack_url
				ELSE EXCLUDED.escalation_slack_url END`,
			orgID, st.AckCriticalS, st.AckHighS, st.AckMediumS, st.AckLowS, st.PhaseLimitS, st.DefaultAssigneeID, escalation, clearEscalation)
		if err != nil {
			return err
		}
		if out, err = readSettings(ctx, tx, orgID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "incident_settings.update", "org", orgID, map[string]any{
			"ack_critical_seconds": out.AckCriticalS, "ack_high_seconds": out.AckHighS, "ack_medium_seconds": out.AckMediumS,
			"ack_low_seconds": out.AckLowS, "phase_limit_seconds": out.PhaseLimitS, "default_assignee_id": out.DefaultAssigneeID,
			"escalation_configured": out.EscalationConfigured,
		}))
	})
	if err != nil {
		return Settings{}, fmt.Errorf("save incident settings of org %d: %w", orgID, err)
	}
	return out, nil
}
