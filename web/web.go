// Package web is Leakwatch's HTTP server: probes, metrics and the dashboard.
// echo stays inside this package; handlers parse, call one domain method and
// render.
package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/leakwatch/leakwatch/incidents"
)

//go:embed templates/*.html
var templateFS embed.FS

// Check is one readiness check; a nil error means ready.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Config holds the server's dependencies.
type Config struct {
	Incidents *incidents.Service
	Checks    []Check
	Gatherer  prometheus.Gatherer
	Registry  prometheus.Registerer
	Logger    *slog.Logger
}

// Server is the HTTP server.
type Server struct {
	echo      *echo.Echo
	incidents *incidents.Service
	checks    []Check
	logger    *slog.Logger
}

// New builds the server and its routes; templates are parsed here so a
// broken template fails at start.
func New(cfg Config) (*Server, error) {
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"since": func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
		"utc":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Renderer = &echo.TemplateRenderer{Template: tmpl}
	// Never trust client-supplied forwarding headers for the client's IP.
	e.IPExtractor = echo.ExtractIPDirect()
	s := &Server{echo: e, incidents: cfg.Incidents, checks: cfg.Checks, logger: cfg.Logger}
	e.HTTPErrorHandler = s.errorHandler

	e.Use(middleware.Recover())
	e.Use(newHTTPMetrics(cfg.Registry))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:         "0",
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		ReferrerPolicy:        "no-referrer",
		ContentSecurityPolicy: "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
	}))
	s.routes(cfg.Gatherer)
	return s, nil
}

func (s *Server) routes(g prometheus.Gatherer) {
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{})))
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/incidents") })
	e.GET("/incidents", s.incidentList)
}

// Handler returns the server as an http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve serves on ln until Shutdown.
func (s *Server) Serve(srv *http.Server) error {
	srv.Handler = s.echo
	err := srv.ListenAndServe()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	status := http.StatusOK
	out := map[string]string{}
	for _, ch := range s.checks {
		if err := ch.Func(ctx); err != nil {
			status = http.StatusServiceUnavailable
			out[ch.Name] = err.Error()
		} else {
			out[ch.Name] = "ok"
		}
	}
	return c.JSON(status, out)
}

func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	msg := "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		msg = http.StatusText(code)
	} else {
		s.logger.Error("request failed", slog.String("path", c.Path()), slog.Any("error", err))
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(code)
	} else {
		err = c.JSON(code, map[string]any{"error": map[string]string{"code": strconv.Itoa(code), "message": msg}})
	}
	if err != nil {
		s.logger.Error("write error response", slog.Any("error", err))
	}
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) echo.MiddlewareFunc {
	m := httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "leakwatch", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "leakwatch", Subsystem: "http", Name: "request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			// The route pattern, never the raw path: paths are unbounded.
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			code := strconv.Itoa(c.Response().Status)
			m.requests.WithLabelValues(route, c.Request().Method, code).Inc()
			m.duration.WithLabelValues(route, c.Request().Method).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}

var _ io.Writer = (*echo.Response)(nil)
