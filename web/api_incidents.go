package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/auth"
)

func (s *Server) apiIncidentList(c echo.Context) error {
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	if limit > 200 {
		limit = 200
	}
	phase := incidents.Phase(c.QueryParam("phase"))
	switch phase {
	case "", incidents.PhaseIdentified, incidents.PhaseContained, incidents.PhaseEradicated, incidents.PhaseRecovered,
		incidents.PhaseClosed, incidents.PhaseFalsePositive, incidents.PhaseAcceptedRisk:
	default:
		return apiErr(http.StatusBadRequest, "invalid", "unknown phase")
	}
	state := c.QueryParam("state")
	if state != "" && state != "open" && state != "closed" {
		return apiErr(http.StatusBadRequest, "invalid", "state must be open or closed")
	}
	m, _ := CurrentMember(c)
	list, err := s.incidents.ListOrg(c.Request().Context(), m.OrgID, incidents.ListParams{Phase: phase, State: state, Before: cursor, Limit: limit})
	if err != nil {
		return err
	}
	p := page[incidents.Incident]{Items: list}
	if p.Items == nil {
		p.Items = []incidents.Incident{}
	}
	if len(list) == limit {
		p.NextCursor = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) apiIncidentGet(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	d, err := s.incidents.Get(c.Request().Context(), m.OrgID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) apiIncidentStats(c echo.Context) error {
	days := 30
	if v := c.QueryParam("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 365 {
			return apiErr(http.StatusBadRequest, "invalid", "days must be between 1 and 365")
		}
		days = n
	}
	m, _ := CurrentMember(c)
	st, err := s.incidents.Stats(c.Request().Context(), m.OrgID, days)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// incidentActionRequest is the union of the actions' bodies; each action
// reads its fields. Unknown fields are refused.
type incidentActionRequest struct {
	UserID     int64  `json:"user_id"`
	Note       string `json:"note"`
	Reason     string `json:"reason"`
	RootCause  string `json:"root_cause"`
	LeakVector string `json:"leak_vector"`
	FollowUps  string `json:"follow_ups"`
}

func (s *Server) apiIncidentAction(action string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		var req incidentActionRequest
		if c.Request().ContentLength != 0 {
			if err := bindJSON(c, &req); err != nil {
				return err
			}
		}
		if err := s.incidentAct(c, id, action, req); err != nil {
			return err
		}
		m, _ := CurrentMember(c)
		d, err := s.incidents.Get(c.Request().Context(), m.OrgID, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, d.Incident)
	}
}

// incidentActionRoles is the least role each workflow action needs; the
// API routes and the incident page both go through incidentAct.
var incidentActionRoles = map[string]auth.Role{
	"acknowledge": auth.RoleResponder, "assign": auth.RoleResponder, "revoke": auth.RoleResponder,
	"contain": auth.RoleResponder, "recover": auth.RoleResponder, "close": auth.RoleResponder,
	"false_positive": auth.RoleResponder, "accept_risk": auth.RoleAdmin, "reopen": auth.RoleResponder,
	"note": auth.RoleResponder,
}

// incidentAct performs one workflow action on an incident of the current
// organisation as the current member, and audits it.
func (s *Server) incidentAct(c echo.Context, id int64, action string, req incidentActionRequest) error {
	m, _ := CurrentMember(c)
	need, ok := incidentActionRoles[action]
	if !ok {
		return apiErr(http.StatusBadRequest, "invalid", "unknown action")
	}
	if !m.Role.AtLeast(need) {
		return apiErr(http.StatusForbidden, "forbidden", "this action needs the "+string(need)+" role")
	}
	ctx := c.Request().Context()
	// The actor's OrgID scopes the action: another organisation's incident
	// is not found.
	details := map[string]any{}
	entry := s.actor(c)
	entry.Action, entry.ObjectType, entry.ObjectID, entry.Details = "incident."+action, "incident", strconv.FormatInt(id, 10), details
	actor := incidents.Actor{Name: m.Actor, UserID: m.UserID, OrgID: m.OrgID, Audit: &entry}
	svc := s.incidents
	var err error
	switch action {
	case "acknowledge":
		err = svc.Acknowledge(ctx, id, actor)
	case "assign":
		if req.UserID <= 0 {
			return apiErr(http.StatusBadRequest, "invalid", "user_id is required")
		}
		if _, merr := s.auth.Membership(ctx, m.OrgID, req.UserID); merr != nil {
			return notAMember(merr, "the assignee must be a member of the organisation")
		}
		details["user_id"] = req.UserID
		err = svc.Assign(ctx, id, req.UserID, actor)
	case "revoke":
		err = svc.RevokeNow(ctx, id, actor)
	case "contain":
		err = svc.MarkContained(ctx, id, actor, req.Note)
	case "recover":
		err = svc.ConfirmRecovery(ctx, id, actor, req.Note)
	case "close":
		err = svc.Close(ctx, id, actor, incidents.Review{RootCause: req.RootCause, LeakVector: req.LeakVector, FollowUps: req.FollowUps})
	case "false_positive":
		details["reason"] = req.Reason
		err = svc.MarkFalsePositive(ctx, id, actor, req.Reason)
	case "accept_risk":
		details["reason"] = req.Reason
		err = svc.AcceptRisk(ctx, id, actor, req.Reason)
	case "reopen":
		details["reason"] = req.Reason
		err = svc.Reopen(ctx, id, actor, req.Reason)
	case "note":
		err = svc.AddNote(ctx, id, actor, req.Note)
	}
	return err
}

type revocationEndpointRequest struct {
	URL  string `json:"url"`
	HMAC bool   `json:"hmac"`
}

// apiRevocationEndpointSet configures the org default (no :id) or one key's
// revocation endpoint. The HMAC secret, if asked for, is shown once.
func (s *Server) apiRevocationEndpointSet(c echo.Context) error {
	keyID, err := optionalPathID(c, "id") // none: the organisation's default
	if err != nil {
		return err
	}
	var req revocationEndpointRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	secret, err := s.incidents.SetRevocationEndpoint(c.Request().Context(), m.OrgID, keyID, req.URL, req.HMAC)
	if err != nil {
		return err
	}
	// The URL may carry a token: audit only that it changed.
	if err := s.audit(c, "revocation_endpoint.set", "key", keyID, map[string]any{"hmac": req.HMAC}); err != nil {
		return err
	}
	out := map[string]any{"key_id": keyID, "hmac": req.HMAC}
	if secret != "" {
		out["hmac_secret"] = secret
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiIncidentSettingsGet(c echo.Context) error {
	m, _ := CurrentMember(c)
	st, err := s.incidents.Settings(c.Request().Context(), m.OrgID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

type incidentSettingsRequest struct {
	incidents.Settings
	ClearEscalation bool `json:"clear_escalation"`
}

func (s *Server) apiIncidentSettingsSet(c echo.Context) error {
	var req incidentSettingsRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	if id := req.DefaultAssigneeID; id != nil {
		if _, err := s.auth.Membership(ctx, m.OrgID, *id); err != nil {
			return notAMember(err, "the default assignee must be a member of the organisation")
		}
	}
	st, err := s.incidents.SetSettings(ctx, m.OrgID, req.Settings, req.ClearEscalation)
	if err != nil {
		return err
	}
	if err := s.audit(c, "incident_settings.update", "org", m.OrgID, map[string]any{
		"ack_critical_seconds": st.AckCriticalS, "ack_high_seconds": st.AckHighS, "ack_medium_seconds": st.AckMediumS,
		"ack_low_seconds": st.AckLowS, "phase_limit_seconds": st.PhaseLimitS, "default_assignee_id": st.DefaultAssigneeID,
		"escalation_configured": st.EscalationConfigured,
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) apiRevocationEndpointList(c echo.Context) error {
	m, _ := CurrentMember(c)
	list, err := s.incidents.RevocationEndpoints(c.Request().Context(), m.OrgID)
	if err != nil {
		return err
	}
	if list == nil {
		list = []incidents.EndpointInfo{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": list})
}

func (s *Server) apiRevocationEndpointDelete(c echo.Context) error {
	keyID, err := optionalPathID(c, "id") // none: the organisation's default
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	if err := s.incidents.DeleteRevocationEndpoint(c.Request().Context(), m.OrgID, keyID); err != nil {
		return err
	}
	if err := s.audit(c, "revocation_endpoint.delete", "key", keyID, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
