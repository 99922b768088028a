package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/slack"
)

// slackConnectionJSON is the organisation's Slack connection as admins see
// it: which mode, where alerts go, whether it is broken — never a secret
// (the bot token shows only its last characters).
type slackConnectionJSON struct {
	Mode              string                 `json:"mode"` // "bot", "webhook" or "none"
	TokenHint         string                 `json:"token_hint,omitempty"`
	SigningSecretSet  bool                   `json:"signing_secret_set"`
	DefaultChannel    string                 `json:"default_channel,omitempty"`
	EscalationChannel string                 `json:"escalation_channel,omitempty"`
	Routes            map[string]slack.Route `json:"routes"`
	Broken            bool                   `json:"broken"`
	BrokenAt          *time.Time             `json:"broken_at,omitempty"`
	BrokenReason      string                 `json:"broken_reason,omitempty"`
	WebhookConfigured bool                   `json:"webhook_configured"`
	InteractivityURL  string                 `json:"interactivity_url"`
}

func (s *Server) slackConnectionJSON(c slack.Connection) slackConnectionJSON {
	mode := c.Mode
	if mode == slack.ModeNone {
		mode = "none"
	}
	return slackConnectionJSON{
		Mode: mode, TokenHint: c.TokenHint, SigningSecretSet: c.SigningSecret != "",
		DefaultChannel: c.DefaultChannel, EscalationChannel: c.EscalationChannel, Routes: c.Routes,
		Broken: c.BrokenAt != nil, BrokenAt: c.BrokenAt, BrokenReason: c.BrokenReason,
		WebhookConfigured: c.WebhookURL != "",
		InteractivityURL:  fmt.Sprintf("%s/slack/interactions/%d", s.baseURL, c.OrgID),
	}
}

func (s *Server) requireSlack() error {
	if s.slack == nil {
		return apiErr(http.StatusServiceUnavailable, "not_configured", "Slack integration is not available on this server")
	}
	return nil
}

// apiSlackGet shows the organisation's Slack connection.
func (s *Server) apiSlackGet(c echo.Context) error {
	if err := s.requireSlack(); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	conn, err := s.slack.Store().Connection(c.Request().Context(), m.OrgID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.slackConnectionJSON(conn))
}

// apiSlackPut connects (or reconnects) Slack with a bot token, the app's
// signing secret, channels and per-severity routes. Secrets are sealed at
// rest and never shown back.
func (s *Server) apiSlackPut(c echo.Context) error {
	if err := s.requireSlack(); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	var req slack.ConnectParams
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.slack.Store().Connect(ctx, s.actor(c), m.OrgID, req); err != nil {
		return err
	}
	conn, err := s.slack.Store().Connection(ctx, m.OrgID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.slackConnectionJSON(conn))
}

// apiSlackDelete disconnects the bot token (an incoming webhook set on the
// organisation stays).
func (s *Server) apiSlackDelete(c echo.Context) error {
	if err := s.requireSlack(); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	if err := s.slack.Store().Disconnect(c.Request().Context(), s.actor(c), m.OrgID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// apiSlackTest queues a test message to the organisation's Slack and
// answers 202 whatever the target later does: the answer is no oracle for
// which addresses answer.
func (s *Server) apiSlackTest(c echo.Context) error {
	if err := s.requireSlack(); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	if err := s.slack.QueueTest(c.Request().Context(), s.actor(c), m.OrgID); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"status": "queued"})
}

// webhookSubscriptionCreated is a new subscription with its signing secret,
// shown only now.
type webhookSubscriptionCreated struct {
	eventhooks.Subscription
	Secret string `json:"secret"`
}

type webhookSubscriptionRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

func (s *Server) requireEventHooks() error {
	if s.eventHooks == nil {
		return apiErr(http.StatusServiceUnavailable, "not_configured", "event webhooks are not available on this server")
	}
	return nil
}

// apiWebhookList lists the organisation's event webhook subscriptions.
func (s *Server) apiWebhookList(c echo.Context) error {
	if err := s.requireEventHooks(); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	subs, err := s.eventHooks.List(c.Request().Context(), m.OrgID)
	if err != nil {
		return err
	}
	if subs == nil {
		subs = []eventhooks.Subscription{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": subs})
}

// apiWebhookCreate subscribes a URL to incident events.
func (s *Server) apiWebhookCreate(c echo.Context) error {
	if err := s.requireEventHooks(); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	var req webhookSubscriptionRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	sub, secret, err := s.eventHooks.Create(c.Request().Context(), s.actor(c), m.OrgID, req.URL, req.Events)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, webhookSubscriptionCreated{Subscription: sub, Secret: secret})
}

// apiWebhookDelete removes a subscription.
func (s *Server) apiWebhookDelete(c echo.Context) error {
	if err := s.requireEventHooks(); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.eventHooks.Delete(c.Request().Context(), s.actor(c), m.OrgID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
