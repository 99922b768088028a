package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/auth"
)

// incidentPage is where the team works one incident: its state, the
// timeline, every sighting with its exposure, the revocation deliveries
// and their attempts, and forms for the workflow actions the phase allows.
func (s *Server) incidentPage(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	d, err := s.incidents.Get(ctx, m.OrgID, id)
	if err != nil {
		return incidentError(err)
	}
	members, err := s.auth.Members(ctx, m.OrgID)
	if err != nil {
		return err
	}
	assignee := ""
	for _, mb := range members {
		if d.AssigneeID != nil && mb.UserID == *d.AssigneeID {
			assignee = mb.Email
		}
	}
	open := d.Phase.Open()
	data := map[string]any{
		"I":          d,
		"Assignee":   assignee,
		"Members":    members,
		"Error":      c.QueryParam("error"),
		"Notice":     c.QueryParam("notice"),
		"CanRespond": m.Role.AtLeast(auth.RoleResponder),
		"Open":       open,
		// What the phase allows; the service refuses the rest anyway.
		"CanAck":     open && d.AcknowledgedAt == nil,
		"CanContain": d.Phase == incidents.PhaseIdentified,
		"CanRecover": d.Phase == incidents.PhaseEradicated,
		"CanClose":   d.Phase == incidents.PhaseRecovered,
		"CanReopen":  !open,
	}
	return s.render(c, http.StatusOK, "incident.html", fmt.Sprintf("Incident %d", d.ID), data)
}

// incidentActSubmit runs a workflow action from the incident page's forms
// and returns to the page with what happened.
func (s *Server) incidentActSubmit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	action := c.FormValue("action")
	req := incidentActionRequest{
		Note: c.FormValue("note"), Reason: c.FormValue("reason"),
		RootCause: c.FormValue("root_cause"), LeakVector: c.FormValue("leak_vector"), FollowUps: c.FormValue("follow_ups"),
	}
	if v := c.FormValue("user_id"); v != "" {
		if req.UserID, err = strconv.ParseInt(v, 10, 64); err != nil {
			return apiErr(http.StatusBadRequest, "invalid", "user_id must be a number")
		}
	}
	back := "/incidents/" + strconv.FormatInt(id, 10)
	if err := s.incidentAct(c, id, action, req); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status != http.StatusNotFound && ae.Status != http.StatusForbidden {
			return c.Redirect(http.StatusSeeOther, back+"?error="+url.QueryEscape(ae.Message))
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, back+"?notice="+url.QueryEscape(actionDone[action]))
}

var actionDone = map[string]string{
	"acknowledge": "Acknowledged.", "assign": "Assigned.", "revoke": "Revocation request queued.",
	"contain": "Marked contained.", "recover": "Recovery confirmed.", "close": "Closed with the review.",
	"false_positive": "Marked a false positive.", "accept_risk": "Risk accepted.", "reopen": "Reopened.",
	"note": "Note added.",
}

// detailPairs renders a timeline entry's details as sorted key/value pairs
// (the template escapes them: titles and URLs come from attackers).
func detailPairs(m map[string]any) [][2]string {
	out := make([][2]string, 0, len(m))
	for k, v := range m {
		if v == nil || v == "" {
			continue
		}
		out = append(out, [2]string{k, fmt.Sprint(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// seconds renders a duration in seconds (nil: not yet).
func seconds(p *float64) string {
	if p == nil {
		return "—"
	}
	return (time.Duration(*p * float64(time.Second))).Round(time.Second).String()
}
