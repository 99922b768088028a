package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
)

func (s *Server) githubFeeds() (*ghcrawler.Feeds, error) {
	if s.github == nil {
		return nil, apiErr(http.StatusServiceUnavailable, "not_configured", "the GitHub crawler is not configured")
	}
	return s.github, nil
}

// apiGitHubHealth reports the public feed and the organisation's watched
// feeds (last success, lag, events/min, gaps), the tokens' rate budgets and
// the push-fetch coverage per hour (pushes fetched / pushes seen).
func (s *Server) apiGitHubHealth(c echo.Context) error {
	feeds, err := s.githubFeeds()
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	h, err := feeds.Health(c.Request().Context(), m.OrgID)
	if err != nil {
		return err
	}
	if h.Feeds == nil {
		h.Feeds = []ghcrawler.FeedHealth{}
	}
	return c.JSON(http.StatusOK, h)
}

func (s *Server) apiGitHubWatchList(c echo.Context) error {
	feeds, err := s.githubFeeds()
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ws, err := feeds.Watches(c.Request().Context(), m.OrgID)
	if err != nil {
		return err
	}
	if ws == nil {
		ws = []ghcrawler.Watch{}
	}
	return c.JSON(http.StatusOK, page[ghcrawler.Watch]{Items: ws})
}

type githubWatchRequest struct {
	Kind   string `json:"kind"`
	Target string `json:"target"`
}

func (s *Server) apiGitHubWatchCreate(c echo.Context) error {
	feeds, err := s.githubFeeds()
	if err != nil {
		return err
	}
	var req githubWatchRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	w, err := feeds.AddWatch(c.Request().Context(), m.OrgID, req.Kind, req.Target)
	if err != nil {
		return err
	}
	if err := s.audit(c, "github_watch.create", "github_watch", w.ID, map[string]any{"kind": w.Kind, "target": w.Target}); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, w)
}

func (s *Server) apiGitHubWatchDelete(c echo.Context) error {
	feeds, err := s.githubFeeds()
	if err != nil {
		return err
	}
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	err = feeds.RemoveWatch(c.Request().Context(), m.OrgID, id)
	if err != nil {
		return err
	}
	if err := s.audit(c, "github_watch.delete", "github_watch", id, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
