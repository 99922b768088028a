package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/internal/audit"
)

func (s *Server) apiAuditList(c echo.Context) error {
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	es, err := s.auditLog.List(c.Request().Context(), m.OrgID, cursor, limit)
	if err != nil {
		return err
	}
	p := page[audit.Entry]{Items: es}
	if p.Items == nil {
		p.Items = []audit.Entry{}
	}
	if len(es) == limit {
		p.NextCursor = strconv.FormatInt(es[len(es)-1].ID, 10)
	}
	return c.JSON(http.StatusOK, p)
}

// apiAuditExport streams the organisation's whole audit log as JSON lines.
func (s *Server) apiAuditExport(c echo.Context) error {
	m, _ := CurrentMember(c)
	c.Response().Header().Set(echo.HeaderContentType, "application/x-ndjson")
	c.Response().Header().Set("Content-Disposition", `attachment; filename="leakwatch-audit.jsonl"`)
	c.Response().WriteHeader(http.StatusOK)
	return s.auditLog.Export(c.Request().Context(), m.OrgID, c.Response())
}
