package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// OIDC is the optional OpenID Connect sign-in of a deployment.
type OIDC struct{}

func (s *Server) oidcLogin(c echo.Context) error {
	if s.oidc == nil {
		return apiErr(http.StatusNotFound, "not_found", "OpenID Connect sign-in is not configured")
	}
	return apiErr(http.StatusNotFound, "not_found", "OpenID Connect sign-in is not configured")
}

func (s *Server) oidcCallback(c echo.Context) error {
	return apiErr(http.StatusNotFound, "not_found", "OpenID Connect sign-in is not configured")
}
