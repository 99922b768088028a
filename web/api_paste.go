package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/crawler/paste"
)

// pasteSourcesResponse lists every paste source's health.
type pasteSourcesResponse struct {
	Items []paste.Health `json:"items"`
}

// apiPasteSources reports each paste source's health: whether it is being
// read at all (state), how fast, how late, and what it probably missed.
// Sources are deployment-wide, not per organisation, and hold no secrets.
func (s *Server) apiPasteSources(c echo.Context) error {
	resp := pasteSourcesResponse{Items: []paste.Health{}}
	if s.paste == nil {
		return c.JSON(http.StatusOK, resp)
	}
	hs, err := s.paste.Health(c.Request().Context())
	if err != nil {
		return err
	}
	if hs != nil {
		resp.Items = hs
	}
	return c.JSON(http.StatusOK, resp)
}
