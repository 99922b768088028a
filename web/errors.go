package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
	"github.com/leakwatch/leakwatch/matcher"
)

// apiError is an error with a status, a stable code and a message safe to
// show.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// apiErr returns an error the error handler shows as is.
func apiErr(status int, code, message string) error {
	return &apiError{Status: status, Code: code, Message: message}
}

// toAPIError maps an error to what the client sees; ok is false for
// internal errors, which are logged and shown as "internal error".
func toAPIError(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae, true
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_"))
		msg := http.StatusText(he.Code)
		if he.Code == http.StatusBadRequest || he.Code == http.StatusRequestEntityTooLarge {
			if s, ok := he.Message.(string); ok {
				msg = s
			}
		}
		return &apiError{Status: he.Code, Code: code, Message: msg}, true
	}
	// Text PostgreSQL cannot store, or a value outside a column's rule,
	// is the client's doing: validation should have caught it, but it is
	// never a 500.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "22021", "22P05": // character_not_in_repertoire, untranslatable_character
			return errBadText.(*apiError), true
		case "22001", "22003", "23514": // string too long, numeric out of range, check violation
			return &apiError{http.StatusBadRequest, "invalid", "a value is out of range"}, true
		}
	}
	msg := err.Error()
	if ae := urlRefused(err); ae != nil {
		return ae, true
	}
	if ae := plaintextRefused(err); ae != nil {
		return ae, true
	}
	switch {
	case errors.Is(err, auth.ErrThrottled):
		return &apiError{http.StatusTooManyRequests, "throttled", auth.ErrThrottled.Error()}, true
	case errors.Is(err, auth.ErrBusy):
		return &apiError{http.StatusServiceUnavailable, "busy", auth.ErrBusy.Error()}, true
	case errors.Is(err, auth.ErrInvalidCredentials):
		return &apiError{http.StatusUnauthorized, "invalid_credentials", auth.ErrInvalidCredentials.Error()}, true
	case errors.Is(err, auth.ErrNotFound), errors.Is(err, keys.ErrNotFound), errors.Is(err, orgs.ErrNotFound):
		return &apiError{http.StatusNotFound, "not_found", "not found"}, true
	case errors.Is(err, auth.ErrInvalid), errors.Is(err, keys.ErrInvalid):
		return &apiError{http.StatusBadRequest, "invalid", afterSentinel(msg)}, true
	case errors.Is(err, keys.ErrRetired):
		return &apiError{http.StatusConflict, "retired", keys.ErrRetired.Error()}, true
	case errors.Is(err, keys.ErrDuplicate):
		return &apiError{http.StatusConflict, "duplicate", "a key with this name or fingerprint is already registered"}, true
	case errors.Is(err, orgs.ErrNameTaken):
		return &apiError{http.StatusConflict, "duplicate", orgs.ErrNameTaken.Error()}, true
	case errors.Is(err, auth.ErrSignInFirst):
		return &apiError{http.StatusConflict, "sign_in_first", auth.ErrSignInFirst.Error()}, true
	case errors.Is(err, auth.ErrForbidden):
		return &apiError{http.StatusForbidden, "forbidden", strings.TrimPrefix(msg, auth.ErrForbidden.Error()+": ")}, true
	case errors.Is(err, auth.ErrLastOwner):
		return &apiError{http.StatusConflict, "last_owner", auth.ErrLastOwner.Error()}, true
	case errors.Is(err, auth.ErrExpired):
		return &apiError{http.StatusGone, "expired", "this link has expired or was already used"}, true
	case errors.Is(err, orgs.ErrInvalid):
		return &apiError{http.StatusBadRequest, "invalid", trimLead(msg, orgs.ErrInvalid)}, true
	}
	if ae := incidentError(err); ae != nil {
		return ae, true
	}
	if ae := integrationError(err); ae != nil {
		return ae, true
	}
	return nil, false
}

// incidentError maps the incident workflow's, queue's and GitHub watches'
// sentinels (nil for other errors).
func incidentError(err error) *apiError {
	msg := err.Error()
	switch {
	case errors.Is(err, incidents.ErrNotFound):
		return &apiError{http.StatusNotFound, "not_found", "not found"}
	case errors.Is(err, incidents.ErrInvalidTransition):
		return &apiError{http.StatusConflict, "invalid_transition", "this action is not possible in the incident's current phase"}
	case errors.Is(err, incidents.ErrReviewRequired):
		return &apiError{http.StatusUnprocessableEntity, "review_required", incidents.ErrReviewRequired.Error()}
	case errors.Is(err, incidents.ErrReasonRequired):
		return &apiError{http.StatusUnprocessableEntity, "reason_required", msg}
	case errors.Is(err, incidents.ErrNoEndpoint):
		return &apiError{http.StatusConflict, "no_endpoint", incidents.ErrNoEndpoint.Error()}
	case errors.Is(err, incidents.ErrNoQueue):
		return &apiError{http.StatusServiceUnavailable, "not_configured", incidents.ErrNoQueue.Error()}
	case errors.Is(err, incidents.ErrInvalidEndpoint), errors.Is(err, incidents.ErrInvalidSettings):
		return &apiError{http.StatusBadRequest, "invalid", msg}
	case errors.Is(err, incidents.ErrInvalidQuery):
		return &apiError{http.StatusBadRequest, "invalid", trimLead(msg, incidents.ErrInvalidQuery)}
	case errors.Is(err, ghcrawler.ErrInvalidWatch):
		return &apiError{http.StatusBadRequest, "invalid", "kind must be org, user or repo, and target a GitHub name (owner/name for repo)"}
	case errors.Is(err, ghcrawler.ErrWatchNotFound):
		return &apiError{http.StatusNotFound, "not_found", "no such watch"}
	}
	return nil
}

// integrationError maps Slack's and event webhooks' sentinels (nil for
// other errors).
func integrationError(err error) *apiError {
	msg := err.Error()
	switch {
	case errors.Is(err, slack.ErrInvalid):
		return &apiError{http.StatusBadRequest, "invalid", strings.TrimPrefix(msg, slack.ErrInvalid.Error()+": ")}
	case errors.Is(err, slack.ErrNotConnected):
		return &apiError{http.StatusConflict, "not_connected", "Slack is not connected for this organisation"}
	case errors.Is(err, secretbox.ErrNoKey):
		return &apiError{http.StatusServiceUnavailable, "encryption_not_configured",
			"the server has no LEAKWATCH_ENCRYPTION_KEY, so it cannot store Slack secrets"}
	case errors.Is(err, eventhooks.ErrInvalid):
		return &apiError{http.StatusBadRequest, "invalid", strings.TrimPrefix(msg, eventhooks.ErrInvalid.Error()+": ")}
	case errors.Is(err, eventhooks.ErrNotFound):
		return &apiError{http.StatusNotFound, "not_found", "not found"}
	}
	return nil
}

// slackInteractionError maps what Slack's interactivity endpoint answers
// Slack: its payload's details are Slack's business, not a form's.
func slackInteractionError(err error) error {
	switch {
	case errors.Is(err, slack.ErrBadSignature):
		return apiErr(http.StatusUnauthorized, "invalid_signature", "invalid Slack request signature")
	case errors.Is(err, slack.ErrInvalid):
		return apiErr(http.StatusBadRequest, "invalid", "malformed Slack payload")
	}
	return err
}

// notAMember is the 422 for a user id that should name a member of the
// organisation (an assignee) but does not; other lookup errors pass.
func notAMember(err error, message string) error {
	if errors.Is(err, auth.ErrNotFound) {
		return apiErr(http.StatusUnprocessableEntity, "not_a_member", message)
	}
	return err
}

// trimLead drops "<sentinel>: " and what precedes it from a message.
func trimLead(msg string, sentinel error) string {
	lead := sentinel.Error() + ": "
	if i := strings.Index(msg, lead); i >= 0 {
		return msg[i+len(lead):]
	}
	return msg
}

// urlRefused is the 422 for a URL the outgoing-request guard refuses when
// it is set (nil for other errors). The message names the URL's own host at
// most, which the caller sent.
func urlRefused(err error) *apiError {
	if !errors.Is(err, webhook.ErrInvalidURL) {
		return nil
	}
	msg := err.Error()
	for _, lead := range []string{auth.ErrInvalid.Error() + ": ", keys.ErrInvalid.Error() + ": "} {
		msg = strings.TrimPrefix(msg, lead)
	}
	return &apiError{http.StatusUnprocessableEntity, "invalid_url", msg}
}

// plaintextRefused is the 422 for free text holding what looks like a
// plaintext secret (nil for other errors). The message names the field,
// never the value.
func plaintextRefused(err error) *apiError {
	if !errors.Is(err, matcher.ErrPlaintextSecret) {
		return nil
	}
	return &apiError{http.StatusUnprocessableEntity, "plaintext_secret", afterSentinel(err.Error())}
}

// afterSentinel drops the "invalid input: " lead of a validation message.
func afterSentinel(msg string) string {
	for _, lead := range []string{auth.ErrInvalid.Error() + ": ", keys.ErrInvalid.Error() + ": "} {
		if i := strings.Index(msg, lead); i >= 0 {
			return msg[i+len(lead):]
		}
	}
	return msg
}

func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae, ok := toAPIError(err)
	if !ok {
		s.logger.Error("request failed", slog.String("path", c.Path()), slog.Any("error", err))
		ae = &apiError{http.StatusInternalServerError, "internal", "internal error"}
	}
	if ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusTooManyRequests {
		c.Response().Header().Set("Retry-After", "1")
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(ae.Status)
	} else if !isAPI(c) && strings.Contains(c.Request().Header.Get("Accept"), "text/html") {
		data := map[string]any{"Status": ae.Status, "Message": ae.Message, "CSRF": ""}
		if s.auth != nil {
			// The layout's navigation, as on any page; if even that fails,
			// the bare error page.
			if full, derr := s.pageData(c, http.StatusText(ae.Status), data); derr == nil {
				data = full
			}
		}
		err = c.Render(ae.Status, "error.html", data)
	} else {
		err = c.JSON(ae.Status, map[string]any{"error": map[string]string{"code": ae.Code, "message": ae.Message}})
	}
	if err != nil {
		s.logger.Error("write error response", slog.Any("error", err))
	}
}

// bindJSON decodes a JSON body strictly: unknown fields are an error, so a
// misspelt or unexpected field (such as "secret") is refused, not ignored.
func bindJSON(c echo.Context, v any) error {
	ct := c.Request().Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/json") {
		return apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, MaxBodyBytesDefault))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return errTooLarge(mbe.Limit)
		case errors.As(err, &te):
			return apiErr(http.StatusBadRequest, "invalid", fmt.Sprintf("field %q must be %s", te.Field, te.Type.String()))
		case errors.As(err, &se):
			return apiErr(http.StatusBadRequest, "invalid", "malformed JSON")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return apiErr(http.StatusBadRequest, "invalid", "unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return apiErr(http.StatusBadRequest, "invalid", "malformed JSON body")
		}
	}
	return nil
}

// pathID parses an integer path parameter; a malformed one is a 404.
func pathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, apiErr(http.StatusNotFound, "not_found", "not found")
	}
	return id, nil
}

// optionalPathID is pathID for a route that may lack the parameter: 0 then.
func optionalPathID(c echo.Context, name string) (int64, error) {
	if c.Param(name) == "" {
		return 0, nil
	}
	return pathID(c, name)
}

// page holds a cursor-paginated list.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// newPage wraps a page of items; a full page gets the cursor of its last item.
func newPage[T any](items []T, limit int, id func(T) int64) page[T] {
	p := page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(items) == limit && limit > 0 {
		p.NextCursor = strconv.FormatInt(id(items[len(items)-1]), 10)
	}
	return p
}

// pageParams reads ?cursor= and ?limit=.
func pageParams(c echo.Context) (cursor int64, limit int, err error) {
	if v := c.QueryParam("cursor"); v != "" {
		cursor, err = strconv.ParseInt(v, 10, 64)
		if err != nil || cursor < 0 {
			return 0, 0, apiErr(http.StatusBadRequest, "invalid", "cursor must be a value from next_cursor")
		}
	}
	limit = 100
	if v := c.QueryParam("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > 1000 {
			return 0, 0, apiErr(http.StatusBadRequest, "invalid", "limit must be between 1 and 1000")
		}
	}
	return cursor, limit, nil
}
