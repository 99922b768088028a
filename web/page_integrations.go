package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
)

// deliveryLogLimit bounds the deliveries each endpoint shows: the newest
// say whether the receiver works; older ones are history.
const deliveryLogLimit = 10

// endpointLog is a revocation endpoint with its newest requests.
type endpointLog struct {
	incidents.EndpointInfo
	Deliveries []incidents.Delivery
}

// integrationsPage shows where incidents go and lets admins change it: the
// Slack connection (incoming webhook or bot, a test message), the
// revocation endpoints (organisation default and per key, with their
// requests' attempts) and the event webhook subscriptions. The page never
// shows a URL that may hold a token, only hosts. data carries what a
// submit adds (a secret shown once).
func (s *Server) integrationsPage(c echo.Context) error {
	return s.renderIntegrations(c, http.StatusOK, map[string]any{"Error": c.QueryParam("error"), "Notice": c.QueryParam("notice")})
}

func (s *Server) renderIntegrations(c echo.Context, status int, data map[string]any) error {
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	data["SlackAvailable"], data["Events"] = s.slack != nil, eventhooks.Events
	if s.slack != nil {
		conn, err := s.slack.Store().Connection(ctx, m.OrgID)
		if err != nil && !errors.Is(err, slack.ErrNotConnected) {
			return err
		}
		data["Slack"], data["SlackRoutes"] = s.slackConnectionJSON(conn), slackRouteRows(conn)
	}
	eps, err := s.incidents.RevocationEndpoints(ctx, m.OrgID)
	if err != nil {
		return err
	}
	logs := make([]endpointLog, len(eps))
	for i, ep := range eps {
		logs[i].EndpointInfo = ep
		if logs[i].Deliveries, err = s.incidents.EndpointDeliveries(ctx, m.OrgID, ep.ID, deliveryLogLimit); err != nil {
			return err
		}
	}
	data["Endpoints"] = logs
	ks, err := s.keys.List(ctx, m.OrgID, keys.ListParams{State: keys.StateActive, Limit: 500})
	if err != nil {
		return err
	}
	data["Keys"] = ks
	if s.eventHooks != nil {
		subs, err := s.eventHooks.List(ctx, m.OrgID)
		if err != nil {
			return err
		}
		hosts := make([]string, len(subs))
		for i, sub := range subs {
			hosts[i] = urlHost(sub.URL)
		}
		data["Hooks"], data["HookHosts"] = subs, hosts
	}
	if _, ok := data["Secret"]; ok {
		// A secret is on this response only; it is never stored readable.
		c.Response().Header().Set("Cache-Control", "no-store")
	}
	return s.render(c, status, "integrations.html", "Integrations", data)
}

// urlHost is a URL's host, the only part of an outgoing URL the dashboard
// shows (paths and queries may carry tokens).
func urlHost(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return ""
}

// backToIntegrations returns to the page with a notice, or with the
// message of a refusal the client can fix; other errors stay errors.
func backToIntegrations(c echo.Context, err error, notice string) error {
	if err != nil {
		ae, ok := toAPIError(err)
		if !ok || ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/integrations?error="+url.QueryEscape(ae.Message))
	}
	return c.Redirect(http.StatusSeeOther, "/integrations?notice="+url.QueryEscape(notice))
}

// slackTestSubmit queues a test message to the organisation's Slack, as
// POST /api/v1/integrations/slack/test: the same audited call, and the
// same answer whatever Slack later does (a refused bot token shows as a
// broken connection on this page).
func (s *Server) slackTestSubmit(c echo.Context) error {
	back := func(q string) error { return c.Redirect(http.StatusSeeOther, "/integrations?"+q) }
	if s.slack == nil {
		return back("error=" + url.QueryEscape("Slack is not available on this server"))
	}
	m, _ := CurrentMember(c)
	err := s.slack.QueueTest(c.Request().Context(), s.actor(c), m.OrgID)
	switch {
	case errors.Is(err, slack.ErrNotConnected):
		return back("error=" + url.QueryEscape("Slack is not connected for this organisation"))
	case err != nil:
		return err
	}
	return back("notice=" + url.QueryEscape(slackTestQueued))
}

// slackTestQueued is the notice of a queued Slack test message.
const slackTestQueued = "Test message queued: it arrives in Slack within seconds, or the connection shows as broken."

// slackWebhookSubmit sets the organisation's Slack incoming-webhook URL,
// as PATCH /api/v1/org {"slack_webhook_url"}: the organisation store
// checks, seals and audits it.
func (s *Server) slackWebhookSubmit(c echo.Context) error {
	if s.slack == nil {
		return backToIntegrations(c, apiErr(http.StatusServiceUnavailable, "not_configured", "Slack is not available on this server"), "")
	}
	u := strings.TrimSpace(c.FormValue("webhook_url"))
	if u == "" {
		return backToIntegrations(c, apiErr(http.StatusBadRequest, "invalid", "paste the incoming webhook URL Slack gave you"), "")
	}
	m, _ := CurrentMember(c)
	_, err := s.orgs.Update(c.Request().Context(), s.actor(c), m.OrgID, orgs.Update{SlackWebhookURL: &u})
	return backToIntegrations(c, err, "Slack incoming webhook saved. Send a test message to check it.")
}

// slackWebhookRemoveSubmit clears the incoming-webhook URL.
func (s *Server) slackWebhookRemoveSubmit(c echo.Context) error {
	empty := ""
	m, _ := CurrentMember(c)
	_, err := s.orgs.Update(c.Request().Context(), s.actor(c), m.OrgID, orgs.Update{SlackWebhookURL: &empty})
	return backToIntegrations(c, err, "Slack incoming webhook removed.")
}

// slackBotSubmit connects Slack with a bot token and the app's signing
// secret, channels and per-severity routes, as PUT
// /api/v1/integrations/slack: the store checks, seals and audits it.
func (s *Server) slackBotSubmit(c echo.Context) error {
	if s.slack == nil {
		return backToIntegrations(c, apiErr(http.StatusServiceUnavailable, "not_configured", "Slack is not available on this server"), "")
	}
	m, _ := CurrentMember(c)
	p := slack.ConnectParams{
		BotToken: c.FormValue("bot_token"), SigningSecret: c.FormValue("signing_secret"),
		DefaultChannel: strings.TrimSpace(c.FormValue("default_channel")), EscalationChannel: strings.TrimSpace(c.FormValue("escalation_channel")),
		Routes: map[string]slack.Route{},
	}
	for _, sev := range slackSeverities {
		r := slack.Route{
			Channel:    strings.TrimSpace(c.FormValue("route_" + sev + "_channel")),
			Mention:    c.FormValue("route_" + sev + "_mention"),
			DigestOnly: c.FormValue("route_"+sev+"_digest") != "",
		}
		if r != slack.DefaultRoute(sev) {
			p.Routes[sev] = r
		}
	}
	if err := s.slack.Store().Connect(c.Request().Context(), s.actor(c), m.OrgID, p); err != nil {
		return backToIntegrations(c, err, "")
	}
	return backToIntegrations(c, nil, "Slack bot connected. Send a test message to check it.")
}

// slackSeverities are the severities the bot form routes, most severe first.
var slackSeverities = []string{"critical", "high", "medium", "low"}

// slackRouteRow is one severity's route as the bot form shows it: the
// configured channel ("" : the default one) and the effective mention.
type slackRouteRow struct {
	Severity   string
	Channel    string
	Mention    string
	DigestOnly bool
}

func slackRouteRows(conn slack.Connection) []slackRouteRow {
	rows := make([]slackRouteRow, len(slackSeverities))
	for i, sev := range slackSeverities {
		r := conn.Routes[sev]
		rows[i] = slackRouteRow{Severity: sev, Channel: r.Channel, Mention: conn.Route(sev).Mention, DigestOnly: r.DigestOnly}
	}
	return rows
}

// slackDisconnectSubmit removes the bot connection, as DELETE
// /api/v1/integrations/slack (an incoming webhook stays).
func (s *Server) slackDisconnectSubmit(c echo.Context) error {
	if s.slack == nil {
		return backToIntegrations(c, apiErr(http.StatusServiceUnavailable, "not_configured", "Slack is not available on this server"), "")
	}
	m, _ := CurrentMember(c)
	if err := s.slack.Store().Disconnect(c.Request().Context(), s.actor(c), m.OrgID); err != nil {
		return err
	}
	return backToIntegrations(c, nil, "Slack bot disconnected.")
}

// webhookCreateSubmit subscribes a URL to incident events, as POST
// /api/v1/integrations/webhooks, and shows its signing secret on this
// response only.
func (s *Server) webhookCreateSubmit(c echo.Context) error {
	if s.eventHooks == nil {
		return backToIntegrations(c, apiErr(http.StatusServiceUnavailable, "not_configured", "event webhooks are not available on this server"), "")
	}
	form, err := c.FormParams()
	if err != nil {
		return apiErr(http.StatusBadRequest, "invalid", "malformed form")
	}
	rawURL := strings.TrimSpace(form.Get("url"))
	if rawURL == "" {
		return backToIntegrations(c, apiErr(http.StatusBadRequest, "invalid", "give the URL to call"), "")
	}
	m, _ := CurrentMember(c)
	sub, secret, err := s.eventHooks.Create(c.Request().Context(), s.actor(c), m.OrgID, rawURL, form["events"])
	if err != nil {
		return backToIntegrations(c, err, "")
	}
	return s.renderIntegrations(c, http.StatusOK, map[string]any{
		"Notice": "Subscribed " + urlHost(sub.URL) + ". Copy the signing secret now: it is not shown again.",
		"Secret": secret, "SecretFor": "event webhook " + urlHost(sub.URL),
	})
}

// webhookDeleteSubmit removes a subscription, as DELETE
// /api/v1/integrations/webhooks/{id}.
func (s *Server) webhookDeleteSubmit(c echo.Context) error {
	if s.eventHooks == nil {
		return echo.ErrNotFound
	}
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	if err := s.eventHooks.Delete(c.Request().Context(), s.actor(c), m.OrgID, id); err != nil {
		return err
	}
	return backToIntegrations(c, nil, "Subscription deleted.")
}

// webhookPage is one subscription's delivery log: each message with each
// attempt (status, latency, error, the receiver's reply excerpt).
func (s *Server) webhookPage(c echo.Context) error {
	if s.eventHooks == nil {
		return echo.ErrNotFound
	}
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	sub, dels, err := s.eventHooks.Deliveries(c.Request().Context(), m.OrgID, id, 50)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "webhook.html", "Event webhook", map[string]any{
		"Hook": sub, "Host": urlHost(sub.URL), "Deliveries": dels,
	})
}

// endpointKey reads the form's "key": "default" (the organisation's
// default endpoint, 0) or a key id. Required, so a bare post changes
// nothing.
func endpointKey(c echo.Context) (int64, error) {
	v := c.FormValue("key")
	if v == "default" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, apiErr(http.StatusBadRequest, "invalid", "choose the organisation default or a key")
	}
	return id, nil
}

// revocationSetSubmit sets the organisation's default or one key's
// revocation endpoint, as PUT /api/v1/revocation-endpoint and
// /api/v1/keys/{id}/revocation-endpoint; an HMAC secret, if asked for, is
// shown on this response only.
func (s *Server) revocationSetSubmit(c echo.Context) error {
	keyID, err := endpointKey(c)
	if err != nil {
		return backToIntegrations(c, err, "")
	}
	rawURL := strings.TrimSpace(c.FormValue("url"))
	if rawURL == "" {
		return backToIntegrations(c, apiErr(http.StatusBadRequest, "invalid", "give the URL to call"), "")
	}
	hmac := c.FormValue("hmac") != ""
	m, _ := CurrentMember(c)
	secret, err := s.incidents.SetRevocationEndpoint(c.Request().Context(), s.actor(c), m.OrgID, keyID, rawURL, hmac)
	if errors.Is(err, incidents.ErrNotFound) {
		return backToIntegrations(c, apiErr(http.StatusBadRequest, "invalid", "no such key"), "")
	}
	if err != nil {
		return backToIntegrations(c, err, "")
	}
	data := map[string]any{"Notice": "Revocation endpoint saved (" + urlHost(rawURL) + ")."}
	if secret != "" {
		data["Notice"] = data["Notice"].(string) + " Copy the HMAC secret now: it is not shown again."
		data["Secret"], data["SecretFor"] = secret, "revocation endpoint "+urlHost(rawURL)
	}
	return s.renderIntegrations(c, http.StatusOK, data)
}

// revocationRemoveSubmit removes the default or a key's endpoint, as
// DELETE /api/v1/revocation-endpoint.
func (s *Server) revocationRemoveSubmit(c echo.Context) error {
	keyID, err := endpointKey(c)
	if err != nil {
		return backToIntegrations(c, err, "")
	}
	m, _ := CurrentMember(c)
	if err := s.incidents.DeleteRevocationEndpoint(c.Request().Context(), s.actor(c), m.OrgID, keyID); err != nil {
		if errors.Is(err, incidents.ErrNotFound) {
			return backToIntegrations(c, apiErr(http.StatusBadRequest, "invalid", "there is no such endpoint"), "")
		}
		return err
	}
	return backToIntegrations(c, nil, "Revocation endpoint removed.")
}

// revocationTestSubmit queues a test request to the default or a key's
// endpoint; its attempt appears in the endpoint's request log.
func (s *Server) revocationTestSubmit(c echo.Context) error {
	keyID, err := endpointKey(c)
	if err != nil {
		return backToIntegrations(c, err, "")
	}
	m, _ := CurrentMember(c)
	if err := s.incidents.QueueRevocationTest(c.Request().Context(), s.actor(c), m.OrgID, keyID); err != nil {
		return backToIntegrations(c, err, "")
	}
	return backToIntegrations(c, nil, "Test request queued: its answer appears under the endpoint's requests.")
}
