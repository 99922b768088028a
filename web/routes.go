package web

import (
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// routes is the table of contents of the server: every route, in one
// list, so `grep` on a path finds its handler and its least role. API
// routes live on s.api (/api/v1); every /api/v1 route must be in
// openapi.json (TestOpenAPICoversRoutes). Every dashboard form must be in
// walk_test.go's formRoutes.
func (s *Server) routes(g prometheus.Gatherer) {
	e := s.echo
	viewer, responder, admin, owner := s.requireRole(auth.RoleViewer), s.requireRole(auth.RoleResponder), s.requireRole(auth.RoleAdmin), s.requireRole(auth.RoleOwner)
	// role gives an incident action its least role from incidentActionRoles,
	// which the incident page's forms use too.
	role := func(action string) echo.MiddlewareFunc { return s.requireRole(incidentActionRoles[action]) }

	// Probes, metrics, assets.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	metrics := echo.WrapHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	e.GET("/metrics", func(c echo.Context) error {
		// Metrics add up every tenant (open incidents, sources): operators'
		// business, not the public's.
		if !fromOperator(c) {
			return echo.ErrNotFound
		}
		return metrics(c)
	})
	e.GET("/static/:file", s.static.serve)
	e.GET("/.well-known/leakwatch/webhook-keys", s.webhookKeys)
	// Slack's interactivity endpoint, authenticated by Slack's signature.
	e.POST("/slack/interactions/:org_id", s.slackInteraction)

	// Signing in.
	e.GET("/signin", s.signinPage)
	e.POST("/signin", s.signinSubmit)
	e.GET("/signin/link", s.signinLink)
	e.POST("/signin/link", s.signinLinkSubmit)
	e.POST("/signout", s.signoutSubmit, s.requireUser)
	e.GET("/invite", s.invitePage)
	e.POST("/invite", s.inviteSubmit)
	e.GET("/auth/oidc/login", s.oidcLogin)
	e.GET("/auth/oidc/callback", s.oidcCallback)
	e.GET("/orgs", s.orgsPage, s.requireUser)
	e.POST("/orgs/switch", s.orgSwitchSubmit, s.requireUser)

	// Dashboard pages (issue 16). Shareable GETs take ?org= (orgFromQuery).
	e.GET("/", s.overviewPage, s.orgFromQuery, viewer)
	e.GET("/incidents", s.queuePage, s.orgFromQuery, viewer)
	e.GET("/incidents/events", s.incidentEvents, viewer)
	e.POST("/incidents/bulk", s.queueBulkSubmit, responder)
	e.GET("/incidents/:id", s.incidentPage, s.orgFromQuery, viewer)
	e.POST("/incidents/:id/act", s.incidentActSubmit, responder)
	e.GET("/keys", s.keysPage, s.orgFromQuery, viewer)
	e.POST("/keys", s.keyRegisterSubmit, admin)
	e.GET("/keys/:id", s.keyPage, s.orgFromQuery, viewer)
	e.POST("/keys/:id/edit", s.keyEditSubmit, admin)
	e.POST("/keys/:id/state", s.keyStateSubmit, admin)
	e.POST("/keys/:id/rotate", s.keyRotateSubmit, admin)
	e.POST("/keys/:id/retire", s.keyRetireSubmit, admin)
	e.POST("/keys/:id/reactivate", s.keyReactivateSubmit, admin)
	e.GET("/audit", s.auditPage, admin)
	e.GET("/audit/export.csv", s.auditExportCSV, admin)
	e.GET("/integrations", s.integrationsPage, admin)
	e.POST("/integrations/slack/test", s.slackTestSubmit, admin)
	e.POST("/integrations/slack/webhook", s.slackWebhookSubmit, admin)
	e.POST("/integrations/slack/webhook/remove", s.slackWebhookRemoveSubmit, admin)
	e.POST("/integrations/slack/bot", s.slackBotSubmit, admin)
	e.POST("/integrations/slack/disconnect", s.slackDisconnectSubmit, admin)
	e.POST("/integrations/webhooks", s.webhookCreateSubmit, admin)
	e.GET("/integrations/webhooks/:id", s.webhookPage, admin)
	e.POST("/integrations/webhooks/:id/delete", s.webhookDeleteSubmit, admin)
	e.POST("/integrations/revocation", s.revocationSetSubmit, admin)
	e.POST("/integrations/revocation/remove", s.revocationRemoveSubmit, admin)
	e.POST("/integrations/revocation/test", s.revocationTestSubmit, admin)
	e.GET("/sources", s.sourcesPage, viewer)
	e.POST("/sources/watches", s.watchAddSubmit, admin)
	e.POST("/sources/watches/:id/remove", s.watchRemoveSubmit, admin)
	e.GET("/settings", s.settingsPage, viewer)
	e.POST("/settings", s.settingsSubmit, admin)
	e.POST("/settings/org", s.orgNameSubmit, admin)
	e.GET("/account", s.accountPage, s.requireUser)
	e.POST("/account/password", s.accountPasswordSubmit, s.requireUser)
	e.POST("/account/signout-all", s.accountSignOutAllSubmit, s.requireUser)
	e.GET("/members", s.membersPage, viewer)
	e.POST("/members/invite", s.invitationCreateSubmit, admin)
	e.POST("/members/:user_id/role", s.memberRoleSubmit, admin)
	e.POST("/members/:user_id/remove", s.memberRemoveSubmit, admin)
	e.GET("/tokens", s.tokensPage, admin)
	e.POST("/tokens", s.tokenCreateSubmit, admin, s.requireUser)
	e.POST("/tokens/:id/revoke", s.tokenRevokeSubmit, admin)
	if s.demoSlack != nil {
		e.GET("/demo/slack", s.demoSlackPage, viewer)
	}

	// JSON API.
	api := e.Group("/api/v1")
	s.api = api
	api.GET("/openapi.json", s.openAPI)
	api.POST("/session", s.apiSignIn)
	api.DELETE("/session", s.apiSignOut, s.requireUser)
	api.DELETE("/sessions", s.apiSignOutEverywhere, s.requireUser)
	api.PUT("/session/org", s.apiSwitchOrg, s.requireUser)
	api.GET("/me", s.apiMe)

	api.GET("/orgs", s.apiOrgList, s.requireUser)
	api.POST("/orgs", s.apiOrgCreate, s.requireUser)
	api.GET("/org", s.apiOrgGet, viewer)
	api.PATCH("/org", s.apiOrgUpdate, admin)
	api.DELETE("/org", s.apiOrgDelete, owner)

	api.GET("/members", s.apiMemberList, viewer)
	api.PATCH("/members/:user_id", s.apiMemberUpdate, admin)
	api.DELETE("/members/:user_id", s.apiMemberRemove, admin)

	api.GET("/invitations", s.apiInvitationList, admin)
	api.POST("/invitations", s.apiInvitationCreate, admin)
	api.DELETE("/invitations/:id", s.apiInvitationRevoke, admin)
	api.POST("/invitations/accept", s.apiInvitationAccept)

	api.GET("/tokens", s.apiTokenList, admin)
	api.POST("/tokens", s.apiTokenCreate, admin, s.requireUser)
	api.DELETE("/tokens/:id", s.apiTokenRevoke, admin)

	api.GET("/keys", s.apiKeyList, viewer)
	api.POST("/keys", s.apiKeyCreate, admin)
	api.GET("/keys/digest", s.apiKeyDigest, viewer)
	api.GET("/keys/:id", s.apiKeyGet, viewer)
	api.PATCH("/keys/:id", s.apiKeyUpdate, admin)
	api.GET("/keys/:id/history", s.apiKeyHistory, viewer)
	api.POST("/keys/:id/rotate", s.apiKeyRotate, admin)
	api.POST("/keys/:id/retire", s.apiKeyRetire, admin)
	api.POST("/keys/:id/revoke", s.apiKeyRevoke, admin)
	api.POST("/keys/:id/reactivate", s.apiKeyReactivate, admin)

	api.GET("/audit", s.apiAuditList, admin)
	api.GET("/audit/export", s.apiAuditExport, admin)

	api.GET("/paste/sources", s.apiPasteSources, viewer)
	api.GET("/github/health", s.apiGitHubHealth, viewer)
	api.GET("/github/watches", s.apiGitHubWatchList, viewer)
	api.POST("/github/watches", s.apiGitHubWatchCreate, admin)
	api.DELETE("/github/watches/:id", s.apiGitHubWatchDelete, admin)

	api.GET("/integrations/slack", s.apiSlackGet, admin)
	api.PUT("/integrations/slack", s.apiSlackPut, admin)
	api.DELETE("/integrations/slack", s.apiSlackDelete, admin)
	api.POST("/integrations/slack/test", s.apiSlackTest, admin)
	api.GET("/integrations/webhooks", s.apiWebhookList, admin)
	api.POST("/integrations/webhooks", s.apiWebhookCreate, admin)
	api.DELETE("/integrations/webhooks/:id", s.apiWebhookDelete, admin)

	// Incidents: reading (viewer), the workflow actions (each with its
	// least role), settings and revocation endpoints (admin).
	api.GET("/incidents", s.apiIncidentList, viewer)
	api.GET("/incidents/stats", s.apiIncidentStats, viewer)
	api.GET("/incidents/:id", s.apiIncidentGet, viewer)
	api.POST("/incidents/:id/acknowledge", s.apiIncidentAction("acknowledge"), role("acknowledge"))
	api.POST("/incidents/:id/assign", s.apiIncidentAction("assign"), role("assign"))
	api.POST("/incidents/:id/revoke", s.apiIncidentAction("revoke"), role("revoke"))
	api.POST("/incidents/:id/contain", s.apiIncidentAction("contain"), role("contain"))
	api.POST("/incidents/:id/recover", s.apiIncidentAction("recover"), role("recover"))
	api.POST("/incidents/:id/close", s.apiIncidentAction("close"), role("close"))
	api.POST("/incidents/:id/false-positive", s.apiIncidentAction("false_positive"), role("false_positive"))
	api.POST("/incidents/:id/accept-risk", s.apiIncidentAction("accept_risk"), role("accept_risk"))
	api.POST("/incidents/:id/reopen", s.apiIncidentAction("reopen"), role("reopen"))
	api.POST("/incidents/:id/notes", s.apiIncidentAction("note"), role("note"))
	api.GET("/incident-settings", s.apiIncidentSettingsGet, viewer)
	api.PUT("/incident-settings", s.apiIncidentSettingsSet, admin)
	api.GET("/revocation-endpoints", s.apiRevocationEndpointList, admin)
	api.PUT("/revocation-endpoint", s.apiRevocationEndpointSet, admin)
	api.DELETE("/revocation-endpoint", s.apiRevocationEndpointDelete, admin)
	api.PUT("/keys/:id/revocation-endpoint", s.apiRevocationEndpointSet, admin)
	api.DELETE("/keys/:id/revocation-endpoint", s.apiRevocationEndpointDelete, admin)
}
