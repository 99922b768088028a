package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/matcher"
)

func (s *Server) apiTokenList(c echo.Context) error {
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ts, err := s.auth.Tokens(c.Request().Context(), m.OrgID, auth.Page{Cursor: cursor, Limit: limit})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newPage(ts, limit, func(t auth.Token) int64 { return t.ID }))
}

type tokenCreateRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

type tokenCreated struct {
	Token auth.Token `json:"token"`
	Value string     `json:"value"` // shown once
}

func (s *Server) apiTokenCreate(c echo.Context) error {
	var req tokenCreateRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	// Token names are free text shown to the whole organisation.
	if err := matcher.CheckFreeText("name", req.Name); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	value, t, err := s.auth.CreateToken(c.Request().Context(), s.actor(c), m.OrgID, m.UserID, req.Name, req.Scope)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tokenCreated{Token: t, Value: value})
}

func (s *Server) apiTokenRevoke(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	if _, err := s.auth.RevokeToken(c.Request().Context(), s.actor(c), m.OrgID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
