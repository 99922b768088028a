// Package web is Leakwatch's HTTP server: probes, metrics and the dashboard.
// echo stays inside this package; handlers parse, call one domain method and
// render.
package web

import (
	"context"
	"embed"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
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
	Auth      *auth.Store
	Orgs      *orgs.Store
	Keys      *keys.Store
	Audit     *audit.Store
	Mailer    Mailer // default: LogMailer
	OIDC      *OIDC  // optional OpenID Connect sign-in
	// Paste reports paste source health; nil: no paste crawler.
	Paste *paste.Store
	// GitHub reports GitHub feed health and keeps watched feeds; nil: none.
	GitHub *ghcrawler.Feeds
	// Slack connects organisations' Slack and receives its clicks; nil:
	// no Slack integration.
	Slack *slack.Service
	// EventHooks keeps event webhook subscriptions; nil: none.
	EventHooks *eventhooks.Store
	// BaseURL is the public URL of the dashboard, used in invitation and
	// sign-in links. Session cookies are Secure when it is https.
	BaseURL string
	// MaxBodyBytes bounds every request body (default
	// MaxBodyBytesDefault); ReadHeaderTimeout and ReadTimeout are those of
	// HTTPServer (defaults ReadHeaderTimeoutDefault, ReadTimeoutDefault).
	MaxBodyBytes      int64
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	Checks            []Check
	Gatherer          prometheus.Gatherer
	Registry          prometheus.Registerer
	Logger            *slog.Logger
	// DemoSlack, set only by `leakwatch demo`, lists what its Slack sink
	// received, shown at /demo/slack and linked from the navigation.
	DemoSlack func() []DemoSlackMessage
}

// Server is the HTTP server.
type Server struct {
	echo          *echo.Echo
	api           *echo.Group // /api/v1
	incidents     *incidents.Service
	auth          *auth.Store
	orgs          *orgs.Store
	keys          *keys.Store
	auditLog      *audit.Store
	mailer        Mailer
	oidc          *OIDC
	baseURL       string
	secureCookies bool
	checks        []Check
	logger        *slog.Logger
	static        *staticFiles
	openAPIDoc    []byte
	paste         *paste.Store
	github        *ghcrawler.Feeds
	slack         *slack.Service
	eventHooks    *eventhooks.Store

	gatherer          prometheus.Gatherer
	maxBody           int64
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	demoSlack         func() []DemoSlackMessage
	streams           streams     // live event streams (events_sse.go)
	banner            bannerCache // failing sources (page_overview.go)
	trends            trendCache  // weekly response times (page_overview.go)
}

// New builds the server and its routes; templates are parsed here so a
// broken template fails at start.
func New(cfg Config) (*Server, error) {
	static, err := newStaticFiles()
	if err != nil {
		return nil, err
	}
	openAPIDoc, err := buildOpenAPI()
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"since":  func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
		"utc":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"static": static.url,
		"join":   strings.Join,
		"split":  strings.Fields,
		"deref": func(p any) any {
			switch v := p.(type) {
			case *int64:
				return *v
			case *int:
				return *v
			case *float64:
				return *v
			}
			return p
		},
		"details": detailPairs,
		"seconds": seconds,
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
	s := &Server{
		echo: e, incidents: cfg.Incidents, auth: cfg.Auth, orgs: cfg.Orgs, keys: cfg.Keys, auditLog: cfg.Audit,
		mailer: cfg.Mailer, oidc: cfg.OIDC, baseURL: strings.TrimRight(cfg.BaseURL, "/"),
		secureCookies: strings.HasPrefix(cfg.BaseURL, "https://"),
		checks:        cfg.Checks, logger: cfg.Logger, static: static, openAPIDoc: openAPIDoc, paste: cfg.Paste,
		github: cfg.GitHub, slack: cfg.Slack, eventHooks: cfg.EventHooks, demoSlack: cfg.DemoSlack,
		gatherer: cfg.Gatherer, maxBody: cfg.MaxBodyBytes, readHeaderTimeout: cfg.ReadHeaderTimeout, readTimeout: cfg.ReadTimeout,
	}
	if s.maxBody <= 0 {
		s.maxBody = MaxBodyBytesDefault
	}
	if s.readHeaderTimeout <= 0 {
		s.readHeaderTimeout = ReadHeaderTimeoutDefault
	}
	if s.readTimeout <= 0 {
		s.readTimeout = ReadTimeoutDefault
	}
	if s.mailer == nil {
		s.mailer = LogMailer{Logger: cfg.Logger}
	}
	e.HTTPErrorHandler = s.errorHandler

	e.Use(middleware.Recover())
	e.Use(middleware.RequestID())
	e.Use(requestLog(cfg.Logger))
	e.Use(newHTTPMetrics(cfg.Registry))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:         "0",
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		ReferrerPolicy:        "same-origin", // never leak URLs to other sites; keeps Origin on our own forms
		ContentSecurityPolicy: "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
	}))
	if s.secureCookies {
		// Served over https: browsers must never fall back to http here
		// (RFC 6797). Set here, not by echo's Secure middleware, which
		// only does so for requests it sees arrive over TLS, and TLS is
		// usually ended by a proxy in front.
		e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				c.Response().Header().Set("Strict-Transport-Security", "max-age=63072000")
				return next(c)
			}
		})
	}
	e.Use(s.boundInput) // before authenticate, which reads the CSRF form field
	e.Use(s.authenticate)
	s.routes(cfg.Gatherer)
	return s, nil
}

// Handler returns the server as an http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

func (s *Server) healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

// readyz answers 200 or 503 to anyone (load balancers need that), with
// each check's error only for operators: errors name the database's user,
// name and address. Failing checks are logged for everyone else.
func (s *Server) readyz(c echo.Context) error {
	detail := fromOperator(c)
	status, out := s.readiness(c.Request().Context(), detail)
	return c.JSON(status, out)
}

// readiness runs the checks: each is "ok", or its error with detail, else
// "failing" (and the error is logged).
func (s *Server) readiness(ctx context.Context, detail bool) (int, map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	status := http.StatusOK
	out := map[string]string{}
	for _, ch := range s.checks {
		if err := ch.Func(ctx); err != nil {
			status = http.StatusServiceUnavailable
			out[ch.Name] = "failing"
			if detail {
				out[ch.Name] = err.Error()
			} else {
				s.logger.Warn("readiness check failing", slog.String("check", ch.Name), slog.Any("error", err))
			}
		} else {
			out[ch.Name] = "ok"
		}
	}
	return status, out
}

// fromOperator reports whether a request comes from this host itself and
// not through a proxy: only then does it see probe errors and metrics.
// A reverse proxy on the same host adds forwarding headers, so what it
// passes on from the internet does not count.
func fromOperator(c echo.Context) bool {
	h := c.Request().Header
	if h.Get("X-Forwarded-For") != "" || h.Get("Forwarded") != "" || h.Get("X-Real-Ip") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		host = c.Request().RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
