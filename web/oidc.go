package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// OIDCConfig configures OpenID Connect sign-in for a deployment.
type OIDCConfig struct {
	Issuer       string // e.g. https://accounts.example.com
	ClientID     string
	ClientSecret string // secret: never log it
	// RedirectURL is BASE_URL/auth/oidc/callback, registered at the provider.
	RedirectURL string
	// HTTPClient makes discovery, key and token requests: the deployment's
	// guarded client (webhook.NewHTTPClient); nil: http.DefaultClient.
	HTTPClient *http.Client
}

// OIDC is the optional OpenID Connect sign-in of a deployment. A signed-in
// identity maps to an existing user by its verified email; it never
// creates users or memberships (invitations do).
type OIDC struct {
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	client   *http.Client
}

// NewOIDC discovers the provider's endpoints and keys.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.HTTPClient != nil {
		// go-oidc keeps this client for later key fetches too.
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery at %s: %w", cfg.Issuer, err)
	}
	return &OIDC{
		client:   cfg.HTTPClient,
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
		},
	}, nil
}

// oidcCookie carries state, nonce and PKCE verifier across the redirect.
const oidcCookie = "lw_oidc"

func randomString() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) oidcLogin(c echo.Context) error {
	if s.oidc == nil {
		return apiErr(http.StatusNotFound, "not_found", "OpenID Connect sign-in is not configured")
	}
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	c.SetCookie(&http.Cookie{
		Name: oidcCookie, Value: state + "." + nonce + "." + verifier, Path: "/auth/oidc/",
		MaxAge: 600, HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode,
	})
	return c.Redirect(http.StatusFound, s.oidc.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
}

func (s *Server) oidcCallback(c echo.Context) error {
	if s.oidc == nil {
		return apiErr(http.StatusNotFound, "not_found", "OpenID Connect sign-in is not configured")
	}
	ck, err := c.Cookie(oidcCookie)
	if err != nil {
		return apiErr(http.StatusBadRequest, "oidc", "sign-in expired; start again")
	}
	c.SetCookie(&http.Cookie{Name: oidcCookie, Value: "", Path: "/auth/oidc/", MaxAge: -1, HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode})
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 3 || subtle.ConstantTimeCompare([]byte(parts[0]), []byte(c.QueryParam("state"))) != 1 {
		return apiErr(http.StatusBadRequest, "oidc", "sign-in state does not match; start again")
	}
	if e := c.QueryParam("error"); e != "" {
		return apiErr(http.StatusUnauthorized, "oidc", "the identity provider refused the sign-in")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 15*time.Second)
	defer cancel()
	if s.oidc.client != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, s.oidc.client)
	}
	tok, err := s.oidc.oauth.Exchange(ctx, c.QueryParam("code"), oauth2.VerifierOption(parts[2]))
	if err != nil {
		return apiErr(http.StatusUnauthorized, "oidc", "the identity provider did not confirm the sign-in")
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return apiErr(http.StatusUnauthorized, "oidc", "the identity provider sent no ID token")
	}
	idt, err := s.oidc.verifier.Verify(ctx, raw)
	if err != nil {
		return apiErr(http.StatusUnauthorized, "oidc", "the ID token is not valid")
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(parts[1])) != 1 {
		return apiErr(http.StatusUnauthorized, "oidc", "the ID token is not valid")
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		return apiErr(http.StatusUnauthorized, "oidc", "the ID token is not valid")
	}
	if claims.Email == "" || !claims.EmailVerified {
		return apiErr(http.StatusForbidden, "oidc", "the identity provider has not verified this email address")
	}
	u, err := s.auth.UserByEmail(ctx, claims.Email)
	if errors.Is(err, auth.ErrNotFound) {
		return apiErr(http.StatusForbidden, "no_membership", "no Leakwatch member has this email address; ask an admin for an invitation")
	}
	if err != nil {
		return err
	}
	ms, err := s.auth.Memberships(ctx, u.ID)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return apiErr(http.StatusForbidden, "no_membership", "no Leakwatch member has this email address; ask an admin for an invitation")
	}
	if _, err := s.startSession(c, u, 0, "oidc"); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/incidents")
}
