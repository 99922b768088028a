package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/orgs"
)

// orgJSON is an organisation as the API shows it; the Slack webhook URL is
// a secret and is only reported as configured or not.
type orgJSON struct {
	ID                   int64     `json:"id"`
	Name                 string    `json:"name"`
	DefaultRevocationURL string    `json:"default_revocation_url"`
	DefaultMaxAgeDays    int       `json:"default_max_age_days"`
	SlackConfigured      bool      `json:"slack_configured"`
	CreatedAt            time.Time `json:"created_at"`
}

func toOrgJSON(o orgs.Org) orgJSON {
	return orgJSON{ID: o.ID, Name: o.Name, DefaultRevocationURL: o.DefaultRevocationURL,
		DefaultMaxAgeDays: o.DefaultMaxAgeDays, SlackConfigured: o.SlackConfigured, CreatedAt: o.CreatedAt}
}

func (s *Server) apiOrgList(c echo.Context) error {
	u, _ := currentUser(c)
	ms, err := s.auth.Memberships(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page[auth.Membership]{Items: ms})
}

type orgCreateRequest struct {
	Name string `json:"name"`
}

func (s *Server) apiOrgCreate(c echo.Context) error {
	var req orgCreateRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	u, _ := currentUser(c)
	ctx := c.Request().Context()
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 200 {
		return apiErr(http.StatusBadRequest, "invalid", "name must have 1 to 200 characters")
	}
	o, created, err := s.orgs.Create(ctx, req.Name)
	if err != nil {
		return err
	}
	if !created {
		return apiErr(http.StatusConflict, "duplicate", "an organisation of that name exists")
	}
	if _, _, err := s.auth.AddMember(ctx, o.ID, u.ID, auth.RoleOwner); err != nil {
		return err
	}
	if err := s.audit(c, "org.create", "org", o.ID, map[string]any{"name": o.Name}); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toOrgJSON(o))
}

func (s *Server) apiOrgGet(c echo.Context) error {
	m, _ := CurrentMember(c)
	o, err := s.orgs.ByID(c.Request().Context(), m.OrgID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toOrgJSON(o))
}

type orgUpdateRequest struct {
	Name                 *string `json:"name"`
	DefaultRevocationURL *string `json:"default_revocation_url"`
	DefaultMaxAgeDays    *int    `json:"default_max_age_days"`
	SlackWebhookURL      *string `json:"slack_webhook_url"`
}

// apiOrgUpdate changes settings: integrations and key defaults need admin,
// renaming needs owner. Every field is checked before anything changes,
// and the change commits with its audit entry (orgs.Store.Update).
func (s *Server) apiOrgUpdate(c echo.Context) error {
	var req orgUpdateRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	if req.Name != nil && !m.Role.AtLeast(auth.RoleOwner) {
		return apiErr(http.StatusForbidden, "forbidden", "renaming the organisation needs the owner role")
	}
	o, err := s.orgs.As(s.actor(c)).Update(c.Request().Context(), m.OrgID, orgs.Update{
		Name: req.Name, DefaultRevocationURL: req.DefaultRevocationURL, DefaultMaxAgeDays: req.DefaultMaxAgeDays,
		SlackWebhookURL: req.SlackWebhookURL,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toOrgJSON(o))
}

func (s *Server) apiOrgDelete(c echo.Context) error {
	m, _ := CurrentMember(c)
	if m.UserID == 0 {
		return apiErr(http.StatusForbidden, "session_required", "deleting an organisation needs a signed-in owner")
	}
	if c.QueryParam("confirm") == "" {
		return apiErr(http.StatusBadRequest, "invalid", "add ?confirm=NAME with the organisation's name")
	}
	ctx := c.Request().Context()
	o, err := s.orgs.ByID(ctx, m.OrgID)
	if err != nil {
		return err
	}
	if c.QueryParam("confirm") != o.Name {
		return apiErr(http.StatusBadRequest, "invalid", "confirm does not match the organisation's name")
	}
	// The entry commits with the deletion: neither happens without the other.
	if err := s.orgs.As(s.actor(c)).Delete(ctx, o.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) apiMemberList(c echo.Context) error {
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ms, err := s.auth.MembersPage(c.Request().Context(), m.OrgID, auth.Page{Cursor: cursor, Limit: limit})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newPage(ms, limit, func(m auth.Membership) int64 { return m.UserID }))
}

type memberUpdateRequest struct {
	Role string `json:"role"`
}

func (s *Server) apiMemberUpdate(c echo.Context) error {
	id, err := pathID(c, "user_id")
	if err != nil {
		return err
	}
	var req memberUpdateRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	target, err := s.auth.Membership(ctx, m.OrgID, id)
	if err != nil {
		return err
	}
	if err := m.maySetRole(target, role); err != nil {
		return err
	}
	updated, err := s.auth.As(s.actor(c)).SetRole(ctx, m.OrgID, id, role)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, updated)
}

func (s *Server) apiMemberRemove(c echo.Context) error {
	id, err := pathID(c, "user_id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	target, err := s.auth.Membership(ctx, m.OrgID, id)
	if err != nil {
		return err
	}
	if err := m.mayRemove(target); err != nil {
		return err
	}
	if err := s.auth.As(s.actor(c)).RemoveMember(ctx, m.OrgID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) apiInvitationList(c echo.Context) error {
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	is, err := s.auth.Invitations(c.Request().Context(), m.OrgID, auth.Page{Cursor: cursor, Limit: limit})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newPage(is, limit, func(i auth.Invitation) int64 { return i.ID }))
}

type invitationCreateRequest struct {
	Email string `json:"email"`
	Role  string `json:"role"`
}

type invitationCreated struct {
	Invitation auth.Invitation `json:"invitation"`
	Link       string          `json:"link"` // shown once
}

func (s *Server) apiInvitationCreate(c echo.Context) error {
	var req invitationCreateRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	if err := m.mayInvite(role); err != nil {
		return err
	}
	ctx := c.Request().Context()
	token, inv, err := s.auth.As(s.actor(c)).Invite(ctx, m.OrgID, m.UserID, req.Email, role)
	if err != nil {
		return err
	}
	link := s.baseURL + "/invite?token=" + url.QueryEscape(token)
	if err := s.mailer.SendInvitation(ctx, inv, link); err != nil {
		return fmt.Errorf("send invitation %d: %w", inv.ID, err)
	}
	return c.JSON(http.StatusCreated, invitationCreated{Invitation: inv, Link: link})
}

func (s *Server) apiInvitationRevoke(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	if err := s.auth.As(s.actor(c)).RevokeInvitation(c.Request().Context(), m.OrgID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type invitationAcceptRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// apiInvitationAccept accepts an invitation: as the signed-in user, or by
// signing up the invited address (with a password) and signing it in.
func (s *Server) apiInvitationAccept(c echo.Context) error {
	var req invitationAcceptRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	var userID int64
	if u, ok := currentUser(c); ok {
		userID = u.ID
	} else if _, ok := CurrentMember(c); ok {
		return apiErr(http.StatusForbidden, "session_required", "API tokens cannot accept invitations")
	}
	u, m, err := s.auth.AcceptInvitation(c.Request().Context(), req.Token, userID, req.Password)
	if err != nil {
		return err
	}
	sess, ok := currentSession(c)
	if ok {
		if _, err := s.auth.SwitchOrg(c.Request().Context(), sess, m.OrgID); err != nil {
			return err
		}
		sess.OrgID = m.OrgID
		c.Set(ctxMember, Member{OrgID: m.OrgID, UserID: u.ID, Role: m.Role, Actor: u.Email})
		if err := s.audit(c, "invitation.accept", "user", u.ID, map[string]any{"role": m.Role}); err != nil {
			return err
		}
	} else {
		if sess, err = s.startSession(c, u, m.OrgID, "invitation"); err != nil {
			return err
		}
		if err := s.audit(c, "invitation.accept", "user", u.ID, map[string]any{"role": m.Role}); err != nil {
			return err
		}
	}
	return s.writeMe(c, &u, sess)
}
