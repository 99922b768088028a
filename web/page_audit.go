package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/internal/audit"
)

// auditFilter reads the audit page's filters (?action=&actor=&object_type=
// &object_id=&cursor=&limit=).
func auditFilter(c echo.Context) (audit.Filter, error) {
	f := audit.Filter{Action: c.QueryParam("action"), Actor: c.QueryParam("actor"),
		ObjectType: c.QueryParam("object_type"), ObjectID: c.QueryParam("object_id"), Limit: 100}
	if v := c.QueryParam("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return f, apiErr(http.StatusBadRequest, "invalid", "cursor must be a value from the next link")
		}
		f.Before = n
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, apiErr(http.StatusBadRequest, "invalid", "limit must be between 1 and 1000")
		}
		f.Limit = n
	}
	return f, nil
}

// auditPage is the organisation's audit log, filterable, paged, exported
// as CSV with the same filters.
func (s *Server) auditPage(c echo.Context) error {
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	es, err := s.auditLog.Search(c.Request().Context(), m.OrgID, f)
	if err != nil {
		return err
	}
	q := url.Values{}
	for _, k := range []string{"action", "actor", "object_type", "object_id"} {
		if v := c.QueryParam(k); v != "" {
			q.Set(k, v)
		}
	}
	export := "/audit/export.csv"
	if len(q) > 0 {
		export += "?" + q.Encode()
	}
	next := ""
	if len(es) == f.Limit {
		q.Set("limit", strconv.Itoa(f.Limit))
		q.Set("cursor", strconv.FormatInt(es[len(es)-1].ID, 10))
		next = "/audit?" + q.Encode()
	}
	return s.render(c, http.StatusOK, "audit.html", "Audit log", map[string]any{
		"Entries": es, "F": f, "Next": next, "Export": export,
	})
}

// auditExportCSV downloads the filtered audit log as CSV.
func (s *Server) auditExportCSV(c echo.Context) error {
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="leakwatch-audit.csv"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	return s.auditLog.ExportCSV(c.Request().Context(), m.OrgID, f, c.Response())
}
