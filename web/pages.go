package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/matcher"
)

// render renders a page with what every page needs: the member, the user,
// their organisations, the CSRF token for forms and the current section.
func (s *Server) render(c echo.Context, status int, name, title string, data map[string]any) error {
	data, err := s.pageData(c, title, data)
	if err != nil {
		return err
	}
	return c.Render(status, name, data)
}

// pageData fills in what the layout needs; error pages use it too, so they
// keep the navigation.
func (s *Server) pageData(c echo.Context, title string, data map[string]any) (map[string]any, error) {
	if data == nil {
		data = map[string]any{}
	}
	data["Title"] = title
	data["DemoSlack"] = s.demoSlack != nil
	data["Nav"] = navSection(c.Request().URL.Path)
	if sess, ok := currentSession(c); ok {
		data["CSRF"] = sess.CSRFToken
	}
	if u, ok := currentUser(c); ok {
		data["User"] = u
		ms, err := s.auth.Memberships(c.Request().Context(), u.ID)
		if err != nil {
			return data, err
		}
		data["Orgs"] = ms
	}
	if m, ok := CurrentMember(c); ok {
		data["Member"] = m
		data["CanAdmin"] = m.Role.AtLeast(auth.RoleAdmin)
		data["FailingSources"] = s.failingSources(c.Request().Context(), m.OrgID)
	}
	return data, nil
}

// navSection is the navigation entry a path belongs to (aria-current).
func navSection(path string) string {
	if path == "/" {
		return "overview"
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return first
}

// safeNext keeps post-sign-in redirects on this site: only a path of our
// own, parsed as a URL, is accepted; anything else goes to the default.
// Browsers drop tabs and newlines from URLs and read a backslash as a
// slash (WHATWG URL standard), so "/\t/evil.example/" or "/\\evil.example"
// would leave the site: control characters and backslashes are refused
// before parsing, and so is a path starting with "//".
func safeNext(next string) string {
	const fallback = "/incidents"
	if next == "" || len(next) > 2048 || !utf8.ValidString(next) {
		return fallback
	}
	for _, r := range next {
		if unicode.IsControl(r) || r == '\\' || unicode.IsSpace(r) {
			return fallback
		}
	}
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return fallback
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.EscapedPath(), "/") || strings.HasPrefix(u.EscapedPath(), "//") {
		return fallback
	}
	return u.String()
}

func (s *Server) signinPage(c echo.Context) error {
	// A new installation has nobody to sign in: say how to begin.
	exists, err := s.orgs.Any(c.Request().Context())
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "signin.html", "Sign in", map[string]any{"Next": c.QueryParam("next"), "OIDC": s.oidc != nil, "NoOrgs": !exists})
}

func (s *Server) signinSubmit(c echo.Context) error {
	u, err := s.auth.SignIn(c.Request().Context(), c.FormValue("email"), c.FormValue("password"), c.RealIP())
	if errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrThrottled) || errors.Is(err, auth.ErrBusy) {
		status := http.StatusUnauthorized
		if errors.Is(err, auth.ErrThrottled) {
			status = http.StatusTooManyRequests
		}
		if errors.Is(err, auth.ErrBusy) {
			status = http.StatusServiceUnavailable
			c.Response().Header().Set("Retry-After", "1")
		}
		return s.render(c, status, "signin.html", "Sign in", map[string]any{
			"Next": c.FormValue("next"), "Error": err.Error(), "Email": c.FormValue("email"), "OIDC": s.oidc != nil,
		})
	}
	if err != nil {
		return err
	}
	if _, err := s.startSession(c, u, 0, "password"); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, safeNext(c.FormValue("next")))
}

// signinLink shows a one-time sign-in link's page (leakwatch orgs
// create). Opening the link signs nobody in: link scanners and chat
// unfurlers fetch links, and must not spend it. The button posts it.
func (s *Server) signinLink(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.render(c, http.StatusOK, "signin_link.html", "Sign in", map[string]any{"Token": c.QueryParam("token")})
}

// signinLinkSubmit consumes a one-time sign-in link.
func (s *Server) signinLinkSubmit(c echo.Context) error {
	userID, orgID, err := s.auth.UseLoginLink(c.Request().Context(), c.FormValue("token"))
	if err != nil {
		return err
	}
	u, err := s.auth.UserByID(c.Request().Context(), userID)
	if err != nil {
		return err
	}
	if _, err := s.startSession(c, u, orgID, "link"); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/keys")
}

func (s *Server) signoutSubmit(c echo.Context) error {
	sess, _ := currentSession(c)
	if err := s.auth.EndSession(c.Request().Context(), s.actor(c), sess.ID); err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.Redirect(http.StatusSeeOther, "/signin")
}

func (s *Server) invitePage(c echo.Context) error {
	_, signedIn := currentSession(c)
	return s.render(c, http.StatusOK, "invite.html", "Accept invitation", map[string]any{"Token": c.QueryParam("token"), "SignedIn": signedIn})
}

func (s *Server) inviteSubmit(c echo.Context) error {
	var userID int64
	if u, ok := currentUser(c); ok {
		userID = u.ID
	}
	u, m, err := s.auth.AcceptInvitation(c.Request().Context(), s.actor(c), c.FormValue("token"), userID, c.FormValue("password"))
	if errors.Is(err, auth.ErrInvalid) || errors.Is(err, auth.ErrSignInFirst) {
		return s.render(c, http.StatusBadRequest, "invite.html", "Accept invitation", map[string]any{
			"Token": c.FormValue("token"), "SignedIn": userID != 0, "Error": afterSentinel(err.Error()),
			"SignIn": "/signin?next=" + url.QueryEscape("/invite?token="+c.FormValue("token")),
		})
	}
	if err != nil {
		return err
	}
	if sess, ok := currentSession(c); ok {
		if _, err := s.auth.SwitchOrg(c.Request().Context(), sess, m.OrgID); err != nil {
			return err
		}
		c.Set(ctxMember, Member{OrgID: m.OrgID, UserID: u.ID, Role: m.Role, Actor: u.Email})
	} else if _, err := s.startSession(c, u, m.OrgID, "invitation"); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/keys")
}

func (s *Server) orgsPage(c echo.Context) error {
	return s.render(c, http.StatusOK, "orgs.html", "Organisations", nil)
}

func (s *Server) orgSwitchSubmit(c echo.Context) error {
	orgID, err := strconv.ParseInt(c.FormValue("org_id"), 10, 64)
	if err != nil {
		return apiErr(http.StatusBadRequest, "invalid", "choose an organisation")
	}
	sess, _ := currentSession(c)
	if _, err := s.auth.SwitchOrg(c.Request().Context(), sess, orgID); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/incidents")
}

func (s *Server) keysPage(c echo.Context) error {
	p, err := keyListParams(c)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ks, err := s.keys.List(c.Request().Context(), m.OrgID, p)
	if err != nil {
		return err
	}
	next := ""
	if len(ks) == p.Limit {
		q := c.QueryParams()
		q.Del("error")
		q.Del("notice")
		q.Set("cursor", strconv.FormatInt(ks[len(ks)-1].ID, 10))
		next = "/keys?" + q.Encode()
	}
	return s.render(c, http.StatusOK, "keys.html", "Keys", map[string]any{
		"Keys": ks, "Environments": keys.Environments, "Error": c.QueryParam("error"), "Notice": c.QueryParam("notice"),
		"State": p.State, "Stale": p.Stale, "Limit": p.Limit, "Next": next, "First": p.After == 0,
		"Provider": p.Provider, "Environment": p.Environment,
	})
}

// backToKeys redirects to the keys page with a message: validation errors
// are safe to show.
func (s *Server) backToKeys(c echo.Context, err error) error {
	if err == nil {
		return c.Redirect(http.StatusSeeOther, "/keys")
	}
	ae, ok := toAPIError(err)
	if !ok {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/keys?error="+url.QueryEscape(ae.Message))
}

func (s *Server) keyRegisterSubmit(c echo.Context) error {
	fp, err := parseFingerprint(c.FormValue("fingerprint"))
	if err != nil {
		return s.backToKeys(c, err)
	}
	maxAge := 0
	if v := strings.TrimSpace(c.FormValue("max_age_days")); v != "" {
		if maxAge, err = strconv.Atoi(v); err != nil {
			return s.backToKeys(c, apiErr(http.StatusBadRequest, "invalid", "max age must be a number of days"))
		}
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.Register(c.Request().Context(), s.actor(c), m.OrgID, keys.Params{
		Name: c.FormValue("name"), Fingerprint: fp, Provider: c.FormValue("provider"), Environment: c.FormValue("environment"),
		Owner: c.FormValue("owner"), Notes: c.FormValue("notes"), Tags: strings.Split(c.FormValue("tags"), ","),
		MaxAgeDays: maxAge, RevocationURL: c.FormValue("revocation_url"),
	})
	if err != nil {
		return s.backToKeys(c, err)
	}
	return c.Redirect(http.StatusSeeOther, "/keys?notice="+url.QueryEscape("Registered "+k.Name))
}

func (s *Server) keyRotateSubmit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	fp, err := parseFingerprint(c.FormValue("fingerprint"))
	if err != nil {
		return s.backToKeys(c, err)
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.Rotate(c.Request().Context(), s.actor(c), m.OrgID, id, fp)
	if err != nil {
		return s.backToKeys(c, err)
	}
	return c.Redirect(http.StatusSeeOther, "/keys?notice="+url.QueryEscape("Rotated "+k.Name))
}

func (s *Server) keyRetireSubmit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.SetState(c.Request().Context(), s.actor(c), m.OrgID, id, keys.StateRetired)
	if err != nil {
		return s.backToKeys(c, err)
	}
	return c.Redirect(http.StatusSeeOther, "/keys?notice="+url.QueryEscape("Retired "+k.Name))
}

func (s *Server) membersPage(c echo.Context) error {
	return s.renderMembers(c, http.StatusOK, map[string]any{"Error": c.QueryParam("error"), "Notice": c.QueryParam("notice")})
}

func (s *Server) renderMembers(c echo.Context, status int, data map[string]any) error {
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	ms, err := s.auth.Members(ctx, m.OrgID)
	if err != nil {
		return err
	}
	data["Members"] = ms
	data["Roles"] = []auth.Role{auth.RoleViewer, auth.RoleResponder, auth.RoleAdmin, auth.RoleOwner}
	data["IsOwner"] = m.Role.AtLeast(auth.RoleOwner)
	if m.Role.AtLeast(auth.RoleAdmin) {
		is, err := s.auth.Invitations(ctx, m.OrgID, auth.Page{})
		if err != nil {
			return err
		}
		data["Invitations"] = is
	}
	return s.render(c, status, "members.html", "Members", data)
}

// backToMembers redirects to the members page with a safe message.
func backToMembers(c echo.Context, err error, notice string) error {
	if err == nil {
		return c.Redirect(http.StatusSeeOther, "/members?notice="+url.QueryEscape(notice))
	}
	ae, ok := toAPIError(err)
	if !ok {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/members?error="+url.QueryEscape(ae.Message))
}

// invitationCreateSubmit invites someone and shows the link once.
func (s *Server) invitationCreateSubmit(c echo.Context) error {
	role, err := auth.ParseRole(c.FormValue("role"))
	if err != nil {
		return backToMembers(c, err, "")
	}
	m, _ := CurrentMember(c)
	if err := m.mayInvite(role); err != nil {
		return backToMembers(c, err, "")
	}
	ctx := c.Request().Context()
	token, inv, err := s.auth.Invite(ctx, s.actor(c), m.OrgID, m.UserID, c.FormValue("email"), role)
	if err != nil {
		return backToMembers(c, err, "")
	}
	link := s.baseURL + "/invite?token=" + url.QueryEscape(token)
	if err := s.mailer.SendInvitation(ctx, inv, link); err != nil {
		return fmt.Errorf("send invitation %d: %w", inv.ID, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.renderMembers(c, http.StatusOK, map[string]any{"NewLink": link, "NewInvitation": inv})
}

func (s *Server) memberRoleSubmit(c echo.Context) error {
	id, err := pathID(c, "user_id")
	if err != nil {
		return err
	}
	role, err := auth.ParseRole(c.FormValue("role"))
	if err != nil {
		return backToMembers(c, err, "")
	}
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	target, err := s.auth.Membership(ctx, m.OrgID, id)
	if err != nil {
		return backToMembers(c, err, "")
	}
	if err := m.maySetRole(target, role); err != nil {
		return backToMembers(c, err, "")
	}
	if _, err := s.auth.SetRole(ctx, s.actor(c), m.OrgID, id, role); err != nil {
		return backToMembers(c, err, "")
	}
	return backToMembers(c, nil, target.Email+" is now "+string(role))
}

func (s *Server) memberRemoveSubmit(c echo.Context) error {
	id, err := pathID(c, "user_id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	target, err := s.auth.Membership(ctx, m.OrgID, id)
	if err != nil {
		return backToMembers(c, err, "")
	}
	if err := m.mayRemove(target); err != nil {
		return backToMembers(c, err, "")
	}
	if err := s.auth.RemoveMember(ctx, s.actor(c), m.OrgID, id); err != nil {
		return backToMembers(c, err, "")
	}
	return backToMembers(c, nil, "Removed "+target.Email)
}

func (s *Server) tokensPage(c echo.Context) error {
	m, _ := CurrentMember(c)
	ts, err := s.auth.Tokens(c.Request().Context(), m.OrgID, auth.Page{})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "tokens.html", "API tokens", map[string]any{"Tokens": ts})
}

func (s *Server) tokenCreateSubmit(c echo.Context) error {
	if err := matcher.CheckFreeText("name", c.FormValue("name")); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	value, t, err := s.auth.CreateToken(c.Request().Context(), s.actor(c), m.OrgID, m.UserID, c.FormValue("name"), c.FormValue("scope"))
	if err != nil {
		return err
	}
	ts, err := s.auth.Tokens(c.Request().Context(), m.OrgID, auth.Page{})
	if err != nil {
		return err
	}
	// The value is shown on this response only; it is never stored.
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.render(c, http.StatusOK, "tokens.html", "API tokens", map[string]any{"Tokens": ts, "NewValue": value, "NewToken": t})
}

func (s *Server) tokenRevokeSubmit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	if _, err := s.auth.RevokeToken(c.Request().Context(), s.actor(c), m.OrgID, id); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/tokens")
}

// keyFilters reads the provider and environment filters the keys page and
// GET /api/v1/keys share (?provider=&environment=).
func keyFilters(c echo.Context, p *keys.ListParams) error {
	p.Provider = strings.TrimSpace(c.QueryParam("provider"))
	if len(p.Provider) > 64 {
		return apiErr(http.StatusBadRequest, "invalid", "provider must have at most 64 characters")
	}
	if p.Environment = c.QueryParam("environment"); p.Environment != "" && !slices.Contains(keys.Environments, p.Environment) {
		return apiErr(http.StatusBadRequest, "invalid", "environment must be one of "+strings.Join(keys.Environments, ", "))
	}
	return nil
}

// keyListParams reads the keys page's filters (?state=&stale=1) and page
// (?cursor=&limit=, default 100).
func keyListParams(c echo.Context) (keys.ListParams, error) {
	p := keys.ListParams{State: c.QueryParam("state"), Limit: 100}
	switch p.State {
	case "", keys.StateActive, keys.StateRevoked, keys.StateRetired:
	default:
		return p, apiErr(http.StatusBadRequest, "invalid", "state must be active, revoked or retired")
	}
	switch c.QueryParam("stale") {
	case "":
	case "1", "true", "on":
		p.Stale = true
	default:
		return p, apiErr(http.StatusBadRequest, "invalid", "stale must be 1 or absent")
	}
	if err := keyFilters(c, &p); err != nil {
		return p, err
	}
	if v := c.QueryParam("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return p, apiErr(http.StatusBadRequest, "invalid", "cursor must be a value from the next link")
		}
		p.After = n
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return p, apiErr(http.StatusBadRequest, "invalid", "limit must be between 1 and 1000")
		}
		p.Limit = n
	}
	return p, nil
}
