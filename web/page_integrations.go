package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/incidents/slack"
)

// integrationsPage shows where incidents go: the Slack connection (with a
// test message), the revocation endpoints and the event webhook
// subscriptions. Connecting and subscribing stay in the API for now
// (/api/v1/integrations/…, /api/v1/revocation-endpoint), whose handlers
// carry the outbound-URL checks; the page never shows a URL that may hold
// a token, only hosts.
func (s *Server) integrationsPage(c echo.Context) error {
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	data := map[string]any{"Error": c.QueryParam("error"), "Notice": c.QueryParam("notice"), "SlackAvailable": s.slack != nil}
	if s.slack != nil {
		conn, err := s.slack.Store().Connection(ctx, m.OrgID)
		if err != nil && !errors.Is(err, slack.ErrNotConnected) {
			return err
		}
		data["Slack"] = s.slackConnectionJSON(conn)
	}
	eps, err := s.incidents.RevocationEndpoints(ctx, m.OrgID)
	if err != nil {
		return err
	}
	data["Endpoints"] = eps
	if s.eventHooks != nil {
		subs, err := s.eventHooks.List(ctx, m.OrgID)
		if err != nil {
			return err
		}
		hosts := make([]string, len(subs))
		for i, sub := range subs {
			if u, err := url.Parse(sub.URL); err == nil {
				hosts[i] = u.Host
			}
		}
		data["Hooks"], data["HookHosts"] = subs, hosts
	}
	return s.render(c, http.StatusOK, "integrations.html", "Integrations", data)
}

// slackTestSubmit sends a test message to the organisation's Slack, as
// POST /api/v1/integrations/slack/test.
func (s *Server) slackTestSubmit(c echo.Context) error {
	back := func(q string) error { return c.Redirect(http.StatusSeeOther, "/integrations?"+q) }
	if s.slack == nil {
		return back("error=" + url.QueryEscape("Slack is not available on this server"))
	}
	m, _ := CurrentMember(c)
	err := s.slack.SendTest(c.Request().Context(), m.OrgID, m.Actor)
	switch {
	case errors.Is(err, slack.ErrNotConnected):
		return back("error=" + url.QueryEscape("Slack is not connected for this organisation"))
	case err != nil:
		s.logger.Warn("Slack test message failed", "org_id", m.OrgID, "error", err)
		return back("error=" + url.QueryEscape("Slack refused the test message; check the connection"))
	}
	if err := s.audit(c, "slack.test", "org", m.OrgID, nil); err != nil {
		return err
	}
	return back("notice=" + url.QueryEscape(strings.TrimSpace("Test message sent.")))
}
