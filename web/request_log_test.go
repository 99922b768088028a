package web

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// TestRequestLog: one line per request with method, path (no query),
// status as sent (errors included), duration and the request id sent back;
// probes at debug, everything else at info.
func TestRequestLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := echo.New()
	e.Use(middleware.RequestID(), requestLog(logger))
	e.GET("/incidents", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/boom", func(echo.Context) error { return echo.NewHTTPError(http.StatusForbidden, "no") })

	ids := map[string]string{}
	for _, path := range []string{"/incidents?token=lwl_secret", "/healthz", "/boom", "/missing"} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		ids[strings.Split(path, "?")[0]] = rec.Header().Get(echo.HeaderXRequestID)
	}
	if strings.Contains(buf.String(), "lwl_secret") {
		t.Fatalf("the query was logged:\n%s", buf.String())
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines for 4 requests:\n%s", len(lines), buf.String())
	}
	want := map[string]struct {
		level  string
		status int
	}{"/incidents": {"INFO", 200}, "/healthz": {"DEBUG", 200}, "/boom": {"INFO", 403}, "/missing": {"INFO", 404}}
	for _, l := range lines {
		var rec struct {
			Level     string  `json:"level"`
			Msg       string  `json:"msg"`
			Method    string  `json:"method"`
			Path      string  `json:"path"`
			Status    int     `json:"status"`
			Duration  float64 `json:"duration"`
			RequestID string  `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		w, ok := want[rec.Path]
		if !ok || rec.Level != w.level || rec.Status != w.status || rec.Method != "GET" || rec.Duration <= 0 ||
			rec.RequestID == "" || rec.RequestID != ids[rec.Path] {
			t.Errorf("line %s; want level %s status %d and request id %q", l, w.level, w.status, ids[rec.Path])
		}
	}
}
