package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/orgs"
)

// settingsPage shows the organisation's incident settings: the
// acknowledgement SLA per severity, the phase limit, the default assignee
// and whether an escalation channel is set. Admins edit them.
func (s *Server) settingsPage(c echo.Context) error {
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	st, err := s.incidents.Settings(ctx, m.OrgID)
	if err != nil {
		return err
	}
	members, err := s.auth.Members(ctx, m.OrgID)
	if err != nil {
		return err
	}
	org, err := s.orgs.ByID(ctx, m.OrgID)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "settings.html", "Settings", map[string]any{
		"S": st, "Members": members, "Org": org, "Error": c.QueryParam("error"), "Notice": c.QueryParam("notice"),
		"Limits": []settingLimit{
			{"ack_critical", "Acknowledge a critical incident within (minutes)", st.AckCriticalS / 60},
			{"ack_high", "Acknowledge a high incident within (minutes)", st.AckHighS / 60},
			{"ack_medium", "Acknowledge a medium incident within (minutes)", st.AckMediumS / 60},
			{"ack_low", "Acknowledge a low incident within (minutes)", st.AckLowS / 60},
			{"phase_limit", "Remind when an incident stays in one phase longer than (minutes)", st.PhaseLimitS / 60},
		},
	})
}

// settingLimit is one limit's form field, in minutes.
type settingLimit struct {
	Name, Label string
	Minutes     int
}

// settingsSubmit saves the settings through the same domain method, checks
// and audit entry as PUT /api/v1/incident-settings.
func (s *Server) settingsSubmit(c echo.Context) error {
	back := func(msg string) error {
		return c.Redirect(http.StatusSeeOther, "/settings?error="+url.QueryEscape(msg))
	}
	minutes := func(name string) (int, bool) {
		n, err := strconv.Atoi(strings.TrimSpace(c.FormValue(name)))
		return n * 60, err == nil
	}
	var st incidents.Settings
	var ok [5]bool
	st.AckCriticalS, ok[0] = minutes("ack_critical")
	st.AckHighS, ok[1] = minutes("ack_high")
	st.AckMediumS, ok[2] = minutes("ack_medium")
	st.AckLowS, ok[3] = minutes("ack_low")
	st.PhaseLimitS, ok[4] = minutes("phase_limit")
	for _, v := range ok {
		if !v {
			return back("every limit must be a whole number of minutes")
		}
	}
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	if v := c.FormValue("default_assignee"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return back("choose a member as the default assignee")
		}
		if _, err := s.auth.Membership(ctx, m.OrgID, id); err != nil {
			if errors.Is(err, auth.ErrNotFound) {
				return back("the default assignee must be a member of the organisation")
			}
			return err
		}
		st.DefaultAssigneeID = &id
	}
	st.EscalationSlackURL = strings.TrimSpace(c.FormValue("escalation_slack_url"))
	saved, err := s.incidents.SetSettings(ctx, m.OrgID, st, c.FormValue("clear_escalation") != "")
	if errors.Is(err, incidents.ErrInvalidSettings) {
		msg := err.Error()
		if i := strings.Index(msg, incidents.ErrInvalidSettings.Error()+": "); i >= 0 {
			msg = msg[i+len(incidents.ErrInvalidSettings.Error())+2:]
		}
		return back(strings.ReplaceAll(msg, "_seconds must be from 60 to 2592000", " must be from 1 minute to 30 days"))
	}
	if err != nil {
		return err
	}
	if err := s.audit(c, "incident_settings.update", "org", m.OrgID, map[string]any{
		"ack_critical_seconds": saved.AckCriticalS, "ack_high_seconds": saved.AckHighS, "ack_medium_seconds": saved.AckMediumS,
		"ack_low_seconds": saved.AckLowS, "phase_limit_seconds": saved.PhaseLimitS, "default_assignee_id": saved.DefaultAssigneeID,
		"escalation_configured": saved.EscalationConfigured,
	}); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/settings?notice="+url.QueryEscape("Settings saved."))
}

// orgNameSubmit renames the organisation, as PATCH /api/v1/org {"name"}:
// the organisation store checks the name and audits the change.
func (s *Server) orgNameSubmit(c echo.Context) error {
	name := c.FormValue("name")
	m, _ := CurrentMember(c)
	o, err := s.orgs.As(s.actor(c)).Update(c.Request().Context(), m.OrgID, orgs.Update{Name: &name})
	if err != nil {
		ae, ok := toAPIError(err)
		if !ok || ae.Status == http.StatusNotFound {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/settings?error="+url.QueryEscape(ae.Message))
	}
	return c.Redirect(http.StatusSeeOther, "/settings?notice="+url.QueryEscape("Renamed the organisation "+o.Name+"."))
}
