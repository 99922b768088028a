package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func (s *Server) incidentList(c echo.Context) error {
	list, err := s.incidents.List(c.Request().Context(), 200)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "incident_list.html", map[string]any{"Incidents": list})
}
