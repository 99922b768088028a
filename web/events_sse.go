package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/internal/keys"
)

// streams ends the live event streams on shutdown: http.Server.Shutdown
// waits for open connections, and a stream never ends by itself.
type streams struct {
	once sync.Once
	ch   chan struct{}
	mu   sync.Mutex
}

func (st *streams) closing() chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ch == nil {
		st.ch = make(chan struct{})
	}
	return st.ch
}

// CloseStreams ends every live event stream (browsers reconnect to another
// process). Register it with http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() {
	ch := s.streams.closing()
	s.streams.once.Do(func() { close(ch) })
}

// sseHeartbeat keeps idle streams open through proxies that close silent
// connections.
const sseHeartbeat = 25 * time.Second

// incidentEvents streams the organisation's incident changes as
// server-sent events ("event: change", data {"incident_id", "what"}); with
// ?incident=ID only that incident's. The events come from PostgreSQL
// notifications through the process's one listener (incidents.Changes),
// so open tabs cost a goroutine each, not a query each.
func (s *Server) incidentEvents(c echo.Context) error {
	var only int64
	if v := c.QueryParam("incident"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return apiErr(http.StatusBadRequest, "invalid", "incident must be an incident id")
		}
		only = id
	}
	m, _ := CurrentMember(c)
	changes, ready, cancel := s.incidents.Changes().Subscribe(m.OrgID)
	defer cancel()
	ctx := c.Request().Context()
	select {
	case <-ready:
	case <-ctx.Done():
		return nil
	}
	w := c.Response()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// "ready" tells the page (and tests) that changes from now on arrive.
	fmt.Fprint(w, "retry: 3000\nevent: ready\ndata: {}\n\n")
	w.Flush()
	tick := time.NewTicker(sseHeartbeat)
	defer tick.Stop()
	closing := s.streams.closing()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-closing:
			return nil
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			w.Flush()
		case ch, ok := <-changes:
			if !ok {
				return nil
			}
			if only != 0 && ch.IncidentID != only {
				continue
			}
			b, err := json.Marshal(map[string]any{"incident_id": ch.IncidentID, "what": ch.What})
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "event: change\ndata: %s\n\n", b)
			w.Flush()
		}
	}
}

// orgFromQuery makes a shared link work: a page opened with ?org=ID
// switches a signed-in member of that organisation to it (a colleague's
// link to an incident of another of their organisations). A non-member's
// ?org= changes nothing, and the page then answers for their current
// organisation (404 for someone else's incident).
func (s *Server) orgFromQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := c.QueryParam("org")
		sess, signedIn := currentSession(c)
		if v == "" || !signedIn {
			return next(c)
		}
		orgID, err := strconv.ParseInt(v, 10, 64)
		if err != nil || orgID <= 0 {
			return next(c)
		}
		if m, ok := CurrentMember(c); ok && m.OrgID == orgID {
			return next(c)
		}
		ctx := c.Request().Context()
		ms, err := s.auth.Membership(ctx, orgID, sess.UserID)
		if err != nil {
			return next(c) // not a member (or gone): no switch
		}
		if _, err := s.auth.SwitchOrg(ctx, sess, orgID); err != nil {
			return err
		}
		u, _ := currentUser(c)
		c.Set(ctxMember, Member{OrgID: orgID, UserID: sess.UserID, Role: ms.Role, Actor: u.Email})
		return next(c)
	}
}

// keyReactivateSubmit makes a retired or revoked key active again: the
// explicit step that rotating a retired key no longer takes silently.
func (s *Server) keyReactivateSubmit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, _ := CurrentMember(c)
	k, err := s.keys.As(s.actor(c)).SetState(c.Request().Context(), m.OrgID, id, keys.StateActive)
	if err != nil {
		return s.backToKeys(c, err)
	}
	return c.Redirect(http.StatusSeeOther, "/keys?notice="+url.QueryEscape("Reactivated "+k.Name))
}
