package web

import (
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"
)

// probes are polled by orchestrators and scrapers every few seconds; their
// lines would drown everything else at info.
var probes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// requestLog writes one line per request: method, path (never the query,
// which can carry a sign-in token), status, duration and the request id
// also sent back as X-Request-Id.
func requestLog(logger *slog.Logger) echo.MiddlewareFunc {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				// Let the error handler write the response first, so the
				// status logged is the one sent.
				c.Error(err)
			}
			req, res := c.Request(), c.Response()
			level := slog.LevelInfo
			if probes[req.URL.Path] {
				level = slog.LevelDebug
			}
			logger.LogAttrs(req.Context(), level, "http request",
				slog.String("method", req.Method), slog.String("path", req.URL.Path), slog.Int("status", res.Status),
				slog.Duration("duration", time.Since(start)), slog.String("request_id", res.Header().Get(echo.HeaderXRequestID)))
			return nil
		}
	}
}
