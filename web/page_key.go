package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/keys"
)

// keyPage is one key: its metadata, rotation history, incidents, and for
// admins the edit form, rotation and state changes.
func (s *Server) keyPage(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	k, err := s.keys.Key(ctx, m.OrgID, id)
	if err != nil {
		return err
	}
	history, err := s.keys.History(ctx, m.OrgID, id)
	if err != nil {
		return err
	}
	incs, err := s.incidents.Queue(ctx, m.OrgID, incidents.QueueParams{KeyID: id, Limit: 20})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "key.html", "Key "+k.Name, map[string]any{
		"K": k, "History": history, "Incidents": incs.Items, "More": incs.NextCursor != "",
		"Environments": keys.Environments, "Tags": strings.Join(k.Tags, ", "),
		"Error": c.QueryParam("error"), "Notice": c.QueryParam("notice"),
	})
}

// backToKey returns to a key's page with what happened; validation errors
// are safe to show.
func backToKey(c echo.Context, id int64, err error, notice string) error {
	path := "/keys/" + strconv.FormatInt(id, 10)
	if err == nil {
		return c.Redirect(http.StatusSeeOther, path+"?notice="+url.QueryEscape(notice))
	}
	ae, ok := toAPIError(err)
	if !ok || ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden {
		return err
	}
	return c.Redirect(http.StatusSeeOther, path+"?error="+url.QueryEscape(ae.Message))
}

// keyEditSubmit saves a key's metadata through keys.Edit (audited in its
// transaction, as PATCH /api/v1/keys/{id}).
func (s *Server) keyEditSubmit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	name, env, owner, notes := c.FormValue("name"), c.FormValue("environment"), c.FormValue("owner"), c.FormValue("notes")
	var tags []string
	for _, t := range strings.Split(c.FormValue("tags"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	maxAge, err := strconv.Atoi(strings.TrimSpace(c.FormValue("max_age_days")))
	if err != nil {
		return backToKey(c, id, apiErr(http.StatusBadRequest, "invalid", "the rotation policy must be a number of days"), "")
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.Edit(c.Request().Context(), s.actor(c), m.OrgID, id, keys.Update{
		Name: &name, Environment: &env, Owner: &owner, Notes: &notes, Tags: &tags, MaxAgeDays: &maxAge,
	})
	if err != nil {
		return backToKey(c, id, err, "")
	}
	return backToKey(c, id, nil, "Saved "+k.Name)
}

// keyStateSubmit revokes, retires or reactivates a key from its page, as
// the API's state actions do (the incident hooks run in the transaction).
func (s *Server) keyStateSubmit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	state := c.FormValue("state")
	if state != keys.StateActive && state != keys.StateRevoked && state != keys.StateRetired {
		return backToKey(c, id, apiErr(http.StatusBadRequest, "invalid", "state must be active, revoked or retired"), "")
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.SetState(c.Request().Context(), s.actor(c), m.OrgID, id, state)
	if err != nil {
		return backToKey(c, id, err, "")
	}
	return backToKey(c, id, nil, fmt.Sprintf("%s is now %s", k.Name, k.State))
}
