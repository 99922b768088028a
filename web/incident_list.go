package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func (s *Server) incidentList(c echo.Context) error {
	m, _ := CurrentMember(c)
	list, err := s.incidents.ListForOrg(c.Request().Context(), m.OrgID, 200)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "incident_list.html", "Incidents", map[string]any{"Incidents": list})
}
