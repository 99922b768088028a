package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/matcher"
)

// parseFingerprint accepts only an lw1 fingerprint and refuses anything that
// looks like a plaintext secret with its own error code. Messages never echo
// the input.
func parseFingerprint(v string) (matcher.Fingerprint, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return matcher.Fingerprint{}, apiErr(http.StatusBadRequest, "invalid", "fingerprint is required")
	}
	if matcher.LooksLikeSecret(v) {
		return matcher.Fingerprint{}, apiErr(http.StatusUnprocessableEntity, "plaintext_secret",
			"this looks like a plaintext secret: never send the secret; send its lw1 fingerprint (leakwatch keys import, or the dashboard computes it in your browser)")
	}
	fp, err := matcher.ParseFingerprint(v)
	if err != nil {
		return matcher.Fingerprint{}, apiErr(http.StatusBadRequest, "invalid", err.Error())
	}
	return fp, nil
}

type keyCreateRequest struct {
	Name          string   `json:"name"`
	Fingerprint   string   `json:"fingerprint"`
	Provider      string   `json:"provider"`
	Environment   string   `json:"environment"`
	Owner         string   `json:"owner"`
	Notes         string   `json:"notes"`
	Tags          []string `json:"tags"`
	MaxAgeDays    int      `json:"max_age_days"`
	RevocationURL string   `json:"revocation_url"`
}

func (s *Server) apiKeyCreate(c echo.Context) error {
	var req keyCreateRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	fp, err := parseFingerprint(req.Fingerprint)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.Register(c.Request().Context(), s.actor(c), m.OrgID, keys.Params{
		Name: req.Name, Fingerprint: fp, Provider: req.Provider, Environment: req.Environment, Owner: req.Owner,
		Notes: req.Notes, Tags: req.Tags, MaxAgeDays: req.MaxAgeDays, RevocationURL: req.RevocationURL,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, k)
}

func (s *Server) apiKeyList(c echo.Context) error {
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	state := c.QueryParam("state")
	if state != "" && state != keys.StateActive && state != keys.StateRetired && state != keys.StateRevoked {
		return apiErr(http.StatusBadRequest, "invalid", "state must be active, revoked or retired")
	}
	lp := keys.ListParams{After: cursor, Limit: limit, State: state, Stale: c.QueryParam("stale") == "true"}
	if err := keyFilters(c, &lp); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	ks, err := s.keys.List(c.Request().Context(), m.OrgID, lp)
	if err != nil {
		return err
	}
	p := page[keys.Key]{Items: ks}
	if len(ks) == limit {
		p.NextCursor = strconv.FormatInt(ks[len(ks)-1].ID, 10)
	}
	if p.Items == nil {
		p.Items = []keys.Key{}
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) apiKeyGet(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.Key(c.Request().Context(), m.OrgID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

type keyUpdateRequest struct {
	Name          *string   `json:"name"`
	Provider      *string   `json:"provider"`
	Environment   *string   `json:"environment"`
	Owner         *string   `json:"owner"`
	Notes         *string   `json:"notes"`
	Tags          *[]string `json:"tags"`
	MaxAgeDays    *int      `json:"max_age_days"`
	RevocationURL *string   `json:"revocation_url"`
}

func (s *Server) apiKeyUpdate(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var req keyUpdateRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.Edit(c.Request().Context(), s.actor(c), m.OrgID, id, keys.Update(req))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

func (s *Server) apiKeyHistory(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	vs, err := s.keys.History(c.Request().Context(), m.OrgID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page[keys.Version]{Items: vs})
}

type keyRotateRequest struct {
	Fingerprint string `json:"fingerprint"`
}

func (s *Server) apiKeyRotate(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var req keyRotateRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	fp, err := parseFingerprint(req.Fingerprint)
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.Rotate(c.Request().Context(), s.actor(c), m.OrgID, id, fp)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

func (s *Server) setKeyState(c echo.Context, state string) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.SetState(c.Request().Context(), s.actor(c), m.OrgID, id, state)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

func (s *Server) apiKeyRetire(c echo.Context) error     { return s.setKeyState(c, keys.StateRetired) }
func (s *Server) apiKeyRevoke(c echo.Context) error     { return s.setKeyState(c, keys.StateRevoked) }
func (s *Server) apiKeyReactivate(c echo.Context) error { return s.setKeyState(c, keys.StateActive) }

func (s *Server) apiKeyDigest(c echo.Context) error {
	m, _ := CurrentMember(c)
	d, err := s.keys.Digest(c.Request().Context(), m.OrgID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}
