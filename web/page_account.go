package web

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// accountPage is the signed-in user's own page: set or change the
// password (the owner `leakwatch orgs create` makes has none, and signs in
// once with a link), the live sessions with sign out everywhere, and the
// API tokens the user created in the current organisation (each borrows
// their rights).
func (s *Server) accountPage(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	u, _ := currentUser(c)
	sess, _ := currentSession(c)
	ctx := c.Request().Context()
	sessions, err := s.auth.Sessions(ctx, u.ID)
	if err != nil {
		return err
	}
	data := map[string]any{"Error": c.QueryParam("error"), "Notice": c.QueryParam("notice"), "Sessions": sessions, "SessionID": sess.ID}
	if m, ok := CurrentMember(c); ok {
		ts, err := s.auth.TokensCreatedBy(ctx, m.OrgID, u.ID)
		if err != nil {
			return err
		}
		data["MyTokens"], data["InOrg"] = ts, true
	}
	return s.render(c, http.StatusOK, "account.html", "Account", data)
}

// accountPasswordSubmit sets a first password, or changes it after
// checking the current one (through SignIn, so guesses are throttled like
// the sign-in form's). Other sessions end: whoever knew the old password
// is out; this browser gets a fresh session.
func (s *Server) accountPasswordSubmit(c echo.Context) error {
	u, _ := currentUser(c)
	sess, _ := currentSession(c)
	ctx := c.Request().Context()
	back := func(msg string) error {
		return c.Redirect(http.StatusSeeOther, "/account?error="+url.QueryEscape(msg))
	}
	pw := c.FormValue("new_password")
	if pw != c.FormValue("confirm_password") {
		return back("the two new passwords differ")
	}
	if u.HasPassword {
		if _, err := s.auth.SignIn(ctx, u.Email, c.FormValue("current_password"), c.RealIP()); err != nil {
			if errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrThrottled) {
				return back("the current password is wrong")
			}
			return err
		}
	}
	if err := s.auth.SetPassword(ctx, u.ID, pw); err != nil {
		if errors.Is(err, auth.ErrInvalid) {
			return back(afterSentinel(err.Error()))
		}
		return err
	}
	action := "user.password_change"
	if !u.HasPassword {
		action = "user.password_set"
	}
	if err := s.audit(c, action, "user", u.ID, nil); err != nil {
		return err
	}
	if _, err := s.auth.EndAllSessions(ctx, u.ID); err != nil {
		return err
	}
	u.HasPassword = true
	if _, err := s.startSession(c, u, sess.OrgID, "password_change"); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/account?notice="+url.QueryEscape("Password saved. Other sessions were signed out."))
}

// accountSignOutAllSubmit ends every session of the user, this one too.
func (s *Server) accountSignOutAllSubmit(c echo.Context) error {
	u, _ := currentUser(c)
	n, err := s.auth.EndAllSessions(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	s.clearSessionCookie(c)
	if err := s.audit(c, "session.delete_all", "user", u.ID, map[string]any{"sessions": n}); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/signin")
}
