package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
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
		return err
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
	emails := map[int64]string{}
	for _, mb := range members {
		emails[mb.UserID] = mb.Email
	}
	// Revocation requests and event-webhook deliveries share the delivery
	// log; the page shows them apart.
	var revocations, hooks []incidents.Delivery
	for _, del := range d.RevocationLog {
		if del.Kind == "revocation" {
			revocations = append(revocations, del)
		} else {
			hooks = append(hooks, del)
		}
	}
	timeline := make([]timelineEntry, 0, len(d.Timeline))
	for _, e := range d.Timeline {
		timeline = append(timeline, timelineEntry{Event: e, Pairs: readableDetails(e.Details, emails, d.KeyName)})
	}
	data := map[string]any{
		"I":           d,
		"Assignee":    assignee,
		"Revocations": revocations,
		"Hooks":       hooks,
		"Timeline":    timeline,
		"Guidance":    guidance(d.Incident),
		"Members":     members,
		"Error":       c.QueryParam("error"),
		"Notice":      c.QueryParam("notice"),
		"CanRespond":  m.Role.AtLeast(auth.RoleResponder),
		"Open":        open,
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
		if ae, ok := toAPIError(err); ok && ae.Status != http.StatusNotFound && ae.Status != http.StatusForbidden {
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

// timelineEntry is a timeline event with its details made readable.
type timelineEntry struct {
	incidents.Event
	Pairs [][2]string
}

// readableDetails renders a timeline entry's details for people: member
// ids become their email, the key id the key's name, field names words.
func readableDetails(m map[string]any, emails map[int64]string, keyName string) [][2]string {
	out := detailPairs(m)
	for i, p := range out {
		switch p[0] {
		case "assignee_id", "user_id":
			out[i][0] = "assignee"
			if id, err := strconv.ParseInt(p[1], 10, 64); err == nil {
				if e, ok := emails[id]; ok {
					out[i][1] = e
				} else {
					out[i][1] = "a former member"
				}
			}
		case "key_id":
			out[i][0], out[i][1] = "key", keyName
		default:
			out[i][0] = strings.ReplaceAll(p[0], "_", " ")
		}
	}
	return out
}

// nextStep is the guidance for an incident's phase: what to do now, and
// where.
type nextStep struct {
	Text, Link, LinkText string
}

func guidance(in incidents.Incident) nextStep {
	key := "/keys?org=" + strconv.FormatInt(in.OrgID, 10) + "#key-" + strconv.FormatInt(in.KeyID, 10)
	switch in.Phase {
	case incidents.PhaseIdentified:
		if in.AcknowledgedAt == nil {
			return nextStep{Text: "Acknowledge the incident so the team knows someone has it, then disable the secret: send the revocation request or revoke it at the provider and mark it contained."}
		}
		return nextStep{Text: "Disable the secret: send the revocation request, or revoke it at " + in.Provider + " and mark it contained."}
	case incidents.PhaseContained:
		return nextStep{Text: "The secret is disabled. Rotate this key: issue a new secret and register its fingerprint.", Link: key, LinkText: "Rotate this key"}
	case incidents.PhaseEradicated:
		return nextStep{Text: "The key was rotated. Confirm that every system runs on the new secret."}
	case incidents.PhaseRecovered:
		return nextStep{Text: "Systems run on the new secret. Close the incident with a post-incident review: root cause, how it leaked, follow-ups."}
	}
	return nextStep{Text: "Closed (" + strings.ReplaceAll(string(in.Phase), "_", " ") + "). A new sighting of this key reopens it."}
}
