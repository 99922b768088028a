package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// webhookKeys publishes the Ed25519 public keys revocation requests are
// signed with, so receivers need no shared secret.
func (s *Server) webhookKeys(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, map[string]any{"keys": s.incidents.WebhookKeys()})
}
