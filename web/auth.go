package web

// Authentication and authorisation, for every handler in this package.
//
// Stable API for handlers added by other files (api_crawler.go,
// api_incidents.go, …):
//
//   - s.api is the echo group for /api/v1. Register a route with its role:
//     s.api.POST("/incidents/:id/resolve", s.resolveIncident, s.requireRole(auth.RoleResponder))
//   - s.requireRole(role) lets through a signed-in member (session cookie)
//     or an API token of the current organisation whose role is at least
//     role; otherwise 401 (no identity) or 403 (role too low). Read tokens
//     act as viewers, write tokens as admins, never above the current role
//     of the member who created them (auth.Token.Role).
//   - CurrentMember(c) returns the Member (OrgID, UserID, TokenID, Role,
//     Actor) after requireRole. Scope every query by Member.OrgID.
//   - Pass s.actor(c) (the member, IP and user agent) to the domain method
//     that makes a change: it writes the audit entry in the change's own
//     transaction; the web layer writes no audit entry of its own.
//   - Unsafe methods with a session cookie must carry the session's CSRF
//     token (X-CSRF-Token header, or csrf_token form field); the
//     authenticate middleware enforces it for every route.
//   - Errors: return apiErr(status, code, message) for a safe message;
//     domain sentinels (ErrNotFound, ErrInvalid, …) are mapped in
//     errorHandler.

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
)

// SessionCookie is the name of the session cookie over plain http (local
// development); SecureSessionCookie its name when the base URL is https.
// Browsers accept a __Host- cookie only with Secure, Path=/ and no Domain,
// so no sibling subdomain or plain-http page can set or shadow it.
const (
	SessionCookie       = "lw_session"
	SecureSessionCookie = "__Host-lw_session"
)

// sessionCookie is the session cookie's name on this server.
func (s *Server) sessionCookie() string {
	if s.secureCookies {
		return SecureSessionCookie
	}
	return SessionCookie
}

const (
	ctxMember  = "lw.member"
	ctxSession = "lw.session"
	ctxUser    = "lw.user"
)

// Member is who makes a request: a user signed in to an organisation, or an
// API token of one.
type Member struct {
	OrgID   int64
	UserID  int64 // 0 for an API token
	TokenID int64 // 0 for a session
	Role    auth.Role
	Actor   string // email, or "token:NAME"
}

// CurrentMember returns the request's member, if it is authenticated and
// working in an organisation.
func CurrentMember(c echo.Context) (Member, bool) {
	m, ok := c.Get(ctxMember).(Member)
	return m, ok
}

// The owner rules live in auth (auth.MayInvite and the others); these ask
// them with the member's role, for the API and the pages alike.

func (m Member) mayInvite(role auth.Role) error { return auth.MayInvite(m.Role, role) }

func (m Member) maySetRole(target auth.Membership, role auth.Role) error {
	return auth.MaySetRole(m.Role, target, role)
}

func (m Member) mayRemove(target auth.Membership) error { return auth.MayRemove(m.Role, target) }

func currentSession(c echo.Context) (auth.Session, bool) {
	s, ok := c.Get(ctxSession).(auth.Session)
	return s, ok
}

func currentUser(c echo.Context) (auth.User, bool) {
	u, ok := c.Get(ctxUser).(auth.User)
	return u, ok
}

func isAPI(c echo.Context) bool { return strings.HasPrefix(c.Request().URL.Path, "/api/") }

func isUnsafe(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// authenticate resolves the session cookie or bearer token of every request
// and enforces CSRF protection for cookie-authenticated unsafe requests.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.auth == nil {
			return next(c)
		}
		ctx := c.Request().Context()
		if h := c.Request().Header.Get("Authorization"); h != "" {
			value, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				return apiErr(http.StatusUnauthorized, "unauthenticated", "Authorization must be \"Bearer TOKEN\"")
			}
			t, err := s.auth.TokenByValue(ctx, strings.TrimSpace(value))
			if errors.Is(err, auth.ErrNotFound) {
				return apiErr(http.StatusUnauthorized, "unauthenticated", "unknown or revoked API token")
			}
			if err != nil {
				return err
			}
			c.Set(ctxMember, Member{OrgID: t.OrgID, TokenID: t.ID, Role: t.Role(), Actor: "token:" + t.Name})
			return next(c)
		}
		// Browsers name the page that sent a request: refuse unsafe requests
		// from other sites even before a session exists (login CSRF).
		if o := c.Request().Header.Get("Origin"); o != "" && isUnsafe(c.Request().Method) {
			if u, err := url.Parse(o); err != nil || u.Host != c.Request().Host {
				return apiErr(http.StatusForbidden, "csrf", "cross-site request refused")
			}
		}
		ck, err := c.Cookie(s.sessionCookie())
		if err != nil || ck.Value == "" {
			return next(c)
		}
		sess, err := s.auth.SessionByToken(ctx, ck.Value)
		if errors.Is(err, auth.ErrNotFound) {
			s.clearSessionCookie(c)
			return next(c)
		}
		if err != nil {
			return err
		}
		if isUnsafe(c.Request().Method) {
			got := c.Request().Header.Get("X-CSRF-Token")
			if got == "" {
				got = c.FormValue("csrf_token")
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRFToken)) != 1 {
				return apiErr(http.StatusForbidden, "csrf", "missing or wrong CSRF token")
			}
		}
		u, err := s.auth.UserByID(ctx, sess.UserID)
		if err != nil {
			return err
		}
		c.Set(ctxSession, sess)
		c.Set(ctxUser, u)
		if sess.OrgID != 0 {
			m, err := s.auth.Membership(ctx, sess.OrgID, sess.UserID)
			if err == nil {
				c.Set(ctxMember, Member{OrgID: m.OrgID, UserID: u.ID, Role: m.Role, Actor: u.Email})
			} else if !errors.Is(err, auth.ErrNotFound) {
				return err
			}
		}
		return next(c)
	}
}

// requireRole lets through members of the current organisation with at
// least role min.
func (s *Server) requireRole(min auth.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			m, ok := CurrentMember(c)
			if !ok {
				if _, signedIn := currentSession(c); signedIn {
					if !isAPI(c) {
						return c.Redirect(http.StatusSeeOther, "/orgs")
					}
					return apiErr(http.StatusForbidden, "no_organisation", "choose an organisation first (PUT /api/v1/session/org)")
				}
				if !isAPI(c) {
					return c.Redirect(http.StatusSeeOther, "/signin?next="+url.QueryEscape(c.Request().URL.RequestURI()))
				}
				return apiErr(http.StatusUnauthorized, "unauthenticated", "sign in or send an API token")
			}
			if !m.Role.AtLeast(min) {
				return apiErr(http.StatusForbidden, "forbidden", fmt.Sprintf("this needs the %s role or higher", min))
			}
			return next(c)
		}
	}
}

// requireUser lets through signed-in users (not API tokens), with or
// without a current organisation.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := currentSession(c); ok {
			return next(c)
		}
		if _, ok := CurrentMember(c); ok {
			return apiErr(http.StatusForbidden, "session_required", "this needs a signed-in user, not an API token")
		}
		if !isAPI(c) {
			return c.Redirect(http.StatusSeeOther, "/signin?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		return apiErr(http.StatusUnauthorized, "unauthenticated", "sign in first")
	}
}

// actor describes who makes the request, for the audit log: the member (or
// signed-in user), IP and user agent. Every mutating domain method takes
// it and records its audit entry in the change's own transaction.
func (s *Server) actor(c echo.Context) audit.Actor {
	a := audit.Actor{IP: c.RealIP(), UserAgent: userAgent(c)}
	if m, ok := CurrentMember(c); ok {
		a.OrgID, a.UserID, a.TokenID, a.Name = m.OrgID, m.UserID, m.TokenID, m.Actor
	} else if u, ok := currentUser(c); ok {
		a.UserID, a.Name = u.ID, u.Email
	}
	return a
}

// userAgent is the request's User-Agent as text PostgreSQL stores: a
// header may carry bytes that are not UTF-8.
func userAgent(c echo.Context) string {
	return truncate(strings.ToValidUTF8(strings.ReplaceAll(c.Request().UserAgent(), "\x00", ""), "?"), 512)
}

// truncate cuts s to at most n bytes, never inside a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// setSessionCookie starts the browser session.
func (s *Server) setSessionCookie(c echo.Context, token string, expires time.Time) {
	c.SetCookie(&http.Cookie{
		Name: s.sessionCookie(), Value: token, Path: "/", Expires: expires,
		HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{
		Name: s.sessionCookie(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode,
	})
}
