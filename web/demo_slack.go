package web

import (
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"
)

// DemoSlackMessage is one post `leakwatch demo`'s Slack sink received.
type DemoSlackMessage struct {
	At   time.Time
	Text string
}

// demoSlackPage shows the demo's Slack channel, newest first, so the alerts
// can be read without a Slack workspace.
func (s *Server) demoSlackPage(c echo.Context) error {
	msgs := slices.Clone(s.demoSlack())
	slices.Reverse(msgs)
	return s.render(c, http.StatusOK, "demo_slack.html", "Demo Slack", map[string]any{"Messages": msgs})
}
