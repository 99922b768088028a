package web

import (
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// maxSlackBody bounds an interactivity request; Slack's payloads are a few
// kilobytes.
const maxSlackBody = 1 << 20

// slackInteraction is the Slack app's interactivity URL for one
// organisation: /slack/interactions/ORG_ID. It authenticates by Slack's
// request signature (no session), queues the clicked action and answers at
// once, well within Slack's 3 seconds; the action itself runs as a job.
func (s *Server) slackInteraction(c echo.Context) error {
	if s.slack == nil {
		return echo.ErrNotFound
	}
	orgID, err := pathID(c, "org_id")
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxSlackBody+1))
	if err != nil {
		return apiErr(http.StatusBadRequest, "invalid", "cannot read the request body")
	}
	if len(body) > maxSlackBody {
		return apiErr(http.StatusRequestEntityTooLarge, "too_large", "request body too large")
	}
	if err := s.slack.HandleInteraction(c.Request().Context(), orgID, c.Request().Header, body); err != nil {
		return slackInteractionError(err)
	}
	return c.NoContent(http.StatusOK)
}
