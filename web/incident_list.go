package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/incidents"
)

// incidentListScan bounds how many recent incidents are read to find the
// current organisation's.
const incidentListScan = 2000

func (s *Server) incidentList(c echo.Context) error {
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	o, err := s.orgs.ByID(ctx, m.OrgID)
	if err != nil {
		return err
	}
	// incidents.Service has no per-organisation listing yet; organisation
	// names are unique, so filtering on it scopes the page exactly.
	all, err := s.incidents.List(ctx, incidentListScan)
	if err != nil {
		return err
	}
	list := make([]incidents.Summary, 0, 200)
	for _, i := range all {
		if i.OrgName == o.Name && len(list) < 200 {
			list = append(list, i)
		}
	}
	return s.render(c, http.StatusOK, "incident_list.html", "Incidents", map[string]any{"Incidents": list})
}
