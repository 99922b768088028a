package web

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/crawler/paste"
)

// sourcesPage shows what Leakwatch watches for the organisation and how
// well: GitHub feed health (last success, lag, gaps), the organisation's
// watched orgs, users and repositories (admins add and remove them), and
// the paste sources' states.
func (s *Server) sourcesPage(c echo.Context) error {
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	data := map[string]any{"Error": c.QueryParam("error"), "Notice": c.QueryParam("notice"),
		"GitHub": s.github != nil, "Kinds": []string{"org", "user", "repo"}}
	if s.github != nil {
		h, err := s.github.Health(ctx, m.OrgID)
		if err != nil {
			return err
		}
		ws, err := s.github.Watches(ctx, m.OrgID)
		if err != nil {
			return err
		}
		data["Feeds"], data["Watches"] = h.Feeds, ws
	}
	if s.paste != nil {
		hs, err := s.paste.Health(ctx)
		if err != nil {
			return err
		}
		data["Pastes"] = hs
	}
	data["Failing"] = map[string]bool{paste.StateFailing: true, paste.StateUnauthorised: true}
	return s.render(c, http.StatusOK, "sources.html", "Sources", data)
}

func backToSources(c echo.Context, errMsg, notice string) error {
	if errMsg != "" {
		return c.Redirect(http.StatusSeeOther, "/sources?error="+url.QueryEscape(errMsg))
	}
	return c.Redirect(http.StatusSeeOther, "/sources?notice="+url.QueryEscape(notice))
}

// watchAddSubmit adds a watched GitHub org, user or repository, audited
// like POST /api/v1/github/watches.
func (s *Server) watchAddSubmit(c echo.Context) error {
	feeds, err := s.githubFeeds()
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	w, err := feeds.AddWatch(c.Request().Context(), m.OrgID, c.FormValue("kind"), c.FormValue("target"))
	if errors.Is(err, ghcrawler.ErrInvalidWatch) {
		return backToSources(c, "choose org, user or repo, and give a GitHub name (owner/name for a repository)", "")
	}
	if err != nil {
		return err
	}
	if err := s.audit(c, "github_watch.create", "github_watch", w.ID, map[string]any{"kind": w.Kind, "target": w.Target}); err != nil {
		return err
	}
	return backToSources(c, "", "Watching "+w.Kind+" "+w.Target)
}

// watchRemoveSubmit stops watching one of the organisation's feeds.
func (s *Server) watchRemoveSubmit(c echo.Context) error {
	feeds, err := s.githubFeeds()
	if err != nil {
		return err
	}
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	if err := feeds.RemoveWatch(c.Request().Context(), m.OrgID, id); err != nil {
		return err
	}
	if err := s.audit(c, "github_watch.delete", "github_watch", id, nil); err != nil {
		return err
	}
	return backToSources(c, "", "Stopped watching it.")
}
