package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/auth"
)

// queueFilterNames are the queue's query parameters, named after the
// fields they filter, so a filtered view is a shareable URL.
var queueFilterNames = []string{"phase", "state", "severity", "source", "key", "assignee", "unacknowledged", "escalated", "q", "sort", "limit"}

// parseQueue reads the queue's filters from the URL; a malformed value is
// a 400 naming the parameter.
func parseQueue(c echo.Context) (incidents.QueueParams, error) {
	p := incidents.QueueParams{
		Phase: incidents.Phase(c.QueryParam("phase")), State: c.QueryParam("state"),
		Severity: incidents.Severity(c.QueryParam("severity")), Source: c.QueryParam("source"),
		Q: c.QueryParam("q"), Sort: c.QueryParam("sort"), Cursor: c.QueryParam("cursor"),
	}
	// The phase filter also takes the states, so one select covers both.
	if p.Phase == "open" || p.Phase == "closed" {
		p.State, p.Phase = string(p.Phase), ""
	}
	bad := func(name, want string) error {
		return apiErr(http.StatusBadRequest, "invalid", name+" must be "+want)
	}
	if v := c.QueryParam("key"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return p, bad("key", "a key id")
		}
		p.KeyID = id
	}
	switch v := c.QueryParam("assignee"); v {
	case "":
	case "none":
		p.AssigneeID = -1
	default:
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return p, bad("assignee", "a member id or none")
		}
		p.AssigneeID = id
	}
	for name, dst := range map[string]*bool{"unacknowledged": &p.Unacknowledged, "escalated": &p.Escalated} {
		switch c.QueryParam(name) {
		case "":
		case "1", "true", "on":
			*dst = true
		default:
			return p, bad(name, "1 or absent")
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return p, bad("limit", "between 1 and 500")
		}
		p.Limit = n
	}
	if p.Limit == 0 {
		p.Limit = 50
	}
	return p, nil
}

// queuePage is the incident queue: filters, search, sort and pages of
// ?limit= incidents with a cursor to the next, live.
func (s *Server) queuePage(c echo.Context) error {
	p, err := parseQueue(c)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	page, err := s.incidents.Queue(ctx, m.OrgID, p)
	if err != nil {
		return err
	}
	members, err := s.auth.Members(ctx, m.OrgID)
	if err != nil {
		return err
	}
	sources, err := s.incidents.Sources(ctx, m.OrgID)
	if err != nil {
		return err
	}
	emails := map[int64]string{}
	for _, mb := range members {
		emails[mb.UserID] = mb.Email
	}
	now := time.Now()
	rows := make([]queueRow, 0, len(page.Items))
	for _, it := range page.Items {
		r := queueRow{QueueItem: it, Age: shortDuration(now.Sub(it.IdentifiedAt)), Overdue: it.Overdue(now)}
		if it.AssigneeID != nil {
			r.Assignee = emails[*it.AssigneeID]
		}
		if it.DueAt != nil {
			if r.Overdue {
				r.Due = "overdue " + shortDuration(now.Sub(*it.DueAt))
			} else {
				r.Due = "due in " + shortDuration(it.DueAt.Sub(now))
			}
		}
		rows = append(rows, r)
	}
	// The URL of this view without the cursor, and of the next page.
	q := url.Values{}
	for _, name := range queueFilterNames {
		if v := c.QueryParam(name); v != "" {
			q.Set(name, v)
		}
	}
	self := "/incidents"
	if enc := q.Encode(); enc != "" {
		self += "?" + enc
	}
	next := ""
	if page.NextCursor != "" {
		q.Set("cursor", page.NextCursor)
		next = "/incidents?" + q.Encode()
	}
	return s.render(c, http.StatusOK, "queue.html", "Incidents", map[string]any{
		"Rows": rows, "Next": next, "Self": self, "First": c.QueryParam("cursor") == "",
		"F": queueForm{
			Phase: c.QueryParam("phase"), Severity: c.QueryParam("severity"), Source: c.QueryParam("source"),
			Key: c.QueryParam("key"), Assignee: c.QueryParam("assignee"), Q: p.Q, Sort: p.Sort, Limit: p.Limit,
			Unacknowledged: p.Unacknowledged, Escalated: p.Escalated,
		},
		"Phases": incidents.Phases, "Severities": []incidents.Severity{incidents.SeverityCritical, incidents.SeverityHigh, incidents.SeverityMedium, incidents.SeverityLow},
		"Sources": sources, "Members": members,
		"CanRespond": m.Role.AtLeast(auth.RoleResponder),
		"Error":      c.QueryParam("error"), "Notice": c.QueryParam("notice"),
	})
}

// queueRow is a queue item as shown.
type queueRow struct {
	incidents.QueueItem
	Assignee, Age, Due string
	Overdue            bool
}

// queueForm is the filter form's current values.
type queueForm struct {
	Phase, Severity, Source, Key, Assignee, Q, Sort string
	Limit                                           int
	Unacknowledged, Escalated                       bool
}

// shortDuration renders a duration as its two largest units ("3d4h").
func shortDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// bulkActions are the queue's bulk actions: each goes through incidentAct,
// the same role check, domain method and audit entry as the single action.
var bulkActions = map[string]string{
	"acknowledge": "Acknowledged", "assign": "Assigned", "false_positive": "Marked a false positive",
	"accept_risk": "Accepted the risk of",
}

// maxBulk bounds one bulk request (a page is at most 500).
const maxBulk = 500

// queueBulkSubmit applies one action to the selected incidents and returns
// to the same view with what happened to each.
func (s *Server) queueBulkSubmit(c echo.Context) error {
	back := c.FormValue("back")
	if !strings.HasPrefix(back, "/incidents") || strings.HasPrefix(back, "//") {
		back = "/incidents"
	}
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	fail := func(msg string) error {
		return c.Redirect(http.StatusSeeOther, back+sep+"error="+url.QueryEscape(msg))
	}
	action := c.FormValue("action")
	done, ok := bulkActions[action]
	if !ok {
		return fail("choose an action")
	}
	form, err := c.FormParams()
	if err != nil {
		return apiErr(http.StatusBadRequest, "invalid", "malformed form")
	}
	ids := form["id"]
	if len(ids) == 0 {
		return fail("select at least one incident")
	}
	if len(ids) > maxBulk {
		return fail(fmt.Sprintf("select at most %d incidents", maxBulk))
	}
	req := incidentActionRequest{Reason: c.FormValue("reason")}
	if action == "assign" {
		if req.UserID, err = strconv.ParseInt(c.FormValue("user_id"), 10, 64); err != nil {
			return fail("choose whom to assign")
		}
	}
	var okN int
	var failed []string
	for _, v := range ids {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			failed = append(failed, fmt.Sprintf("%q: not an incident", v))
			continue
		}
		if err := s.incidentAct(c, id, action, req); err != nil {
			ae, ok := toAPIError(err)
			if !ok {
				return err
			}
			if ae.Status == http.StatusForbidden {
				return err
			}
			failed = append(failed, fmt.Sprintf("#%d: %s", id, ae.Message))
			continue
		}
		okN++
	}
	msg := fmt.Sprintf("%s %d incident(s).", done, okN)
	if len(failed) > 0 {
		msg += " Not done: " + strings.Join(failed, "; ")
		return c.Redirect(http.StatusSeeOther, back+sep+"error="+url.QueryEscape(msg))
	}
	return c.Redirect(http.StatusSeeOther, back+sep+"notice="+url.QueryEscape(msg))
}
