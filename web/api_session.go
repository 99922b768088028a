package web

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/internal/auth"
)

type signInRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type meResponse struct {
	User        *auth.User        `json:"user,omitempty"`
	Memberships []auth.Membership `json:"memberships,omitempty"`
	OrgID       int64             `json:"org_id"`
	Role        auth.Role         `json:"role,omitempty"`
	TokenID     int64             `json:"token_id,omitempty"`
	CSRFToken   string            `json:"csrf_token,omitempty"`
}

// startSession signs the user in: a new session (audited by auth) and its
// cookie.
func (s *Server) startSession(c echo.Context, u auth.User, orgID int64, method string) (auth.Session, error) {
	token, sess, err := s.auth.NewSession(c.Request().Context(), s.actor(c), u.ID, orgID, method)
	if err != nil {
		return auth.Session{}, err
	}
	s.setSessionCookie(c, token, sess.ExpiresAt)
	c.Set(ctxSession, sess)
	c.Set(ctxUser, u)
	if sess.OrgID != 0 {
		if m, err := s.auth.Membership(c.Request().Context(), sess.OrgID, u.ID); err == nil {
			c.Set(ctxMember, Member{OrgID: m.OrgID, UserID: u.ID, Role: m.Role, Actor: u.Email})
		}
	}
	return sess, nil
}

func (s *Server) apiSignIn(c echo.Context) error {
	var req signInRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	u, err := s.auth.SignIn(c.Request().Context(), req.Email, req.Password, c.RealIP())
	if err != nil {
		return err
	}
	sess, err := s.startSession(c, u, 0, "password")
	if err != nil {
		return err
	}
	return s.writeMe(c, &u, sess)
}

func (s *Server) apiSignOut(c echo.Context) error {
	sess, _ := currentSession(c)
	if err := s.auth.EndSession(c.Request().Context(), s.actor(c), sess.ID); err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) apiSignOutEverywhere(c echo.Context) error {
	sess, _ := currentSession(c)
	n, err := s.auth.EndAllSessions(c.Request().Context(), s.actor(c), sess.UserID)
	if err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.JSON(http.StatusOK, map[string]int64{"ended": n})
}

type switchOrgRequest struct {
	OrgID int64 `json:"org_id"`
}

func (s *Server) apiSwitchOrg(c echo.Context) error {
	var req switchOrgRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	sess, _ := currentSession(c)
	u, _ := currentUser(c)
	m, err := s.auth.SwitchOrg(c.Request().Context(), sess, req.OrgID)
	if err != nil {
		return err
	}
	sess.OrgID = m.OrgID
	c.Set(ctxMember, Member{OrgID: m.OrgID, UserID: u.ID, Role: m.Role, Actor: u.Email})
	return s.writeMe(c, &u, sess)
}

func (s *Server) apiMe(c echo.Context) error {
	if u, ok := currentUser(c); ok {
		sess, _ := currentSession(c)
		return s.writeMe(c, &u, sess)
	}
	if m, ok := CurrentMember(c); ok {
		return c.JSON(http.StatusOK, meResponse{OrgID: m.OrgID, Role: m.Role, TokenID: m.TokenID})
	}
	return apiErr(http.StatusUnauthorized, "unauthenticated", "sign in or send an API token")
}

func (s *Server) writeMe(c echo.Context, u *auth.User, sess auth.Session) error {
	ms, err := s.auth.Memberships(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	resp := meResponse{User: u, Memberships: ms, OrgID: sess.OrgID, CSRFToken: sess.CSRFToken}
	for _, m := range ms {
		if m.OrgID == sess.OrgID {
			resp.Role = m.Role
		}
	}
	return c.JSON(http.StatusOK, resp)
}

// Mailer delivers invitation links. The link is a bearer credential:
// implementations must not log it.
type Mailer interface {
	SendInvitation(ctx context.Context, inv auth.Invitation, link string) error
}

// LogMailer is the Mailer used until email delivery exists: it logs that an
// invitation was made (ids and address, never the link). The inviting admin
// receives the link in the API response and passes it on.
type LogMailer struct{ Logger *slog.Logger }

// SendInvitation logs the invitation.
func (m LogMailer) SendInvitation(_ context.Context, inv auth.Invitation, _ string) error {
	m.Logger.Info("invitation created; deliver the link returned to the inviting admin",
		slog.Int64("invitation_id", inv.ID), slog.Int64("org_id", inv.OrgID), slog.String("email", inv.Email))
	return nil
}
