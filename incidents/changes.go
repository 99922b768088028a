package incidents

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ChangesChannel is the PostgreSQL notification channel the incident
// triggers announce changes on (migration 0018).
const ChangesChannel = "leakwatch_incidents"

// Change is one announced change of an incident: a new incident, or what
// changed ("phase", "acknowledged", "assignee", "severity", "escalated",
// "containment", "sighting", "note").
type Change struct {
	OrgID      int64    `json:"org_id"`
	IncidentID int64    `json:"incident_id"`
	What       []string `json:"what"`
}

// Changes fans the database's incident notifications out to subscribers
// (the dashboard's server-sent event streams). One process holds one LISTEN
// connection while anybody is subscribed, whatever the number of open
// browser tabs, and none otherwise: browsers wait on the stream instead of
// polling. It is the shape of Postgres LISTEN/NOTIFY fan-out in River's
// notifier (riverqueue/river internal/notifier).
type Changes struct {
	pool   *pgxpool.Pool
	logger *slog.Logger

	mu     sync.Mutex
	subs   map[int64]map[chan Change]struct{} // org → subscribers
	n      int
	cancel context.CancelFunc // stops the listener; nil when none runs
	done   chan struct{}
	ready  chan struct{} // closed once LISTEN is in effect
	// pollEvery, when set, replaces LISTEN with reading new timeline rows
	// (WithPolledChanges).
	pollEvery time.Duration
}

// Changes returns the service's change feed; there is one per Service.
func (s *Service) Changes() *Changes {
	s.changesOnce.Do(func() {
		s.changes = &Changes{pool: s.pool, logger: s.logger, subs: map[int64]map[chan Change]struct{}{}, pollEvery: s.changesPoll}
	})
	return s.changes
}

// Subscribe returns the organisation's changes until cancel is called. A
// subscriber that falls behind loses changes rather than slowing the
// others: the channel is buffered and sends never block. ready is closed
// once the listener is in effect, so a change committed after it is seen.
func (c *Changes) Subscribe(orgID int64) (ch <-chan Change, ready <-chan struct{}, cancel func()) {
	out := make(chan Change, 64)
	c.mu.Lock()
	if c.subs[orgID] == nil {
		c.subs[orgID] = map[chan Change]struct{}{}
	}
	c.subs[orgID][out] = struct{}{}
	c.n++
	if c.cancel == nil {
		ctx, stop := context.WithCancel(context.Background())
		c.cancel, c.done, c.ready = stop, make(chan struct{}), make(chan struct{})
		go c.listen(ctx, c.done, c.ready)
	}
	rdy := c.ready
	c.mu.Unlock()
	var once sync.Once
	return out, rdy, func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.subs[orgID], out)
			if len(c.subs[orgID]) == 0 {
				delete(c.subs, orgID)
			}
			c.n--
			var done chan struct{}
			if c.n == 0 && c.cancel != nil {
				c.cancel()
				done = c.done
				c.cancel, c.done = nil, nil
			}
			c.mu.Unlock()
			if done != nil {
				<-done
			}
		})
	}
}

// listen holds the LISTEN connection and reconnects after a failure; a
// reconnect may miss changes, which the pages tolerate (each change makes
// them reload what they show, and the next one catches up).
func (c *Changes) listen(ctx context.Context, done, ready chan struct{}) {
	defer close(done)
	readyOnce := sync.OnceFunc(func() { close(ready) })
	defer readyOnce()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		var err error
		if c.pollEvery > 0 {
			err = c.pollOnce(ctx, readyOnce)
		} else {
			err = c.listenOnce(ctx, readyOnce)
		}
		if ctx.Err() != nil {
			return
		}
		c.logger.Warn("incident change listener failed; reconnecting", slog.Any("error", err), slog.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (c *Changes) listenOnce(ctx context.Context, ready func()) error {
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection will hold LISTEN: take it out of the pool for good.
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+ChangesChannel); err != nil {
		return err
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var ch Change
		if err := json.Unmarshal([]byte(n.Payload), &ch); err != nil {
			c.logger.Warn("malformed incident change", slog.Any("error", err))
			continue
		}
		c.mu.Lock()
		for sub := range c.subs[ch.OrgID] {
			select {
			case sub <- ch:
			default:
			}
		}
		c.mu.Unlock()
	}
}

// WithPolledChanges makes Changes read new incidents, timeline entries and
// sightings every d instead of LISTENing, for a database reached through a
// transaction pooler (PgBouncer), which keeps no LISTEN session. Every
// change the triggers announce also writes one of those rows (a phase,
// acknowledgement, assignment, severity, escalation or containment change
// is a timeline entry). Rows are read by id, and ids are taken at insert,
// not commit: a transaction that commits after a later one's row was read
// is missed, as a change during a LISTEN reconnect is; the pages catch up
// on the next change. Call it before Changes. It returns s.
func (s *Service) WithPolledChanges(d time.Duration) *Service {
	s.changesPoll = max(d, 0)
	return s
}

// pollOnce reads changes from the tables every pollEvery, from the rows
// present when it starts, until ctx ends or a query fails.
func (c *Changes) pollOnce(ctx context.Context, ready func()) error {
	var lastIncident, lastEvent, lastOccurrence int64
	if err := c.pool.QueryRow(ctx, `SELECT
		(SELECT coalesce(max(id), 0) FROM incidents),
		(SELECT coalesce(max(id), 0) FROM incident_events),
		(SELECT coalesce(max(id), 0) FROM occurrences)`).Scan(&lastIncident, &lastEvent, &lastOccurrence); err != nil {
		return fmt.Errorf("read change cursors: %w", err)
	}
	ready()
	t := time.NewTicker(c.pollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rows, err := c.pool.Query(ctx, `
			SELECT 'i', i.id, i.org_id, i.id, 'new' FROM incidents i WHERE i.id > $1
			UNION ALL
			SELECT 'e', e.id, i.org_id, e.incident_id, e.kind FROM incident_events e JOIN incidents i ON i.id = e.incident_id
			WHERE e.id > $2 AND e.kind <> 'opened'
			UNION ALL
			SELECT 'o', o.id, i.org_id, o.incident_id, 'sighting' FROM occurrences o JOIN incidents i ON i.id = o.incident_id
			WHERE o.id > $3
			ORDER BY 2 LIMIT 1000`, lastIncident, lastEvent, lastOccurrence)
		if err != nil {
			return fmt.Errorf("poll incident changes: %w", err)
		}
		var found []Change
		for rows.Next() {
			var table, kind string
			var id int64
			var ch Change
			if err := rows.Scan(&table, &id, &ch.OrgID, &ch.IncidentID, &kind); err != nil {
				rows.Close()
				return fmt.Errorf("read incident change: %w", err)
			}
			switch table {
			case "i":
				lastIncident = max(lastIncident, id)
			case "e":
				lastEvent = max(lastEvent, id)
			case "o":
				lastOccurrence = max(lastOccurrence, id)
			}
			ch.What = []string{changeOf(kind)}
			found = append(found, ch)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("poll incident changes: %w", err)
		}
		c.mu.Lock()
		for _, ch := range found {
			for sub := range c.subs[ch.OrgID] {
				select {
				case sub <- ch:
				default:
				}
			}
		}
		c.mu.Unlock()
	}
}

// changeOf names a timeline entry's kind as the NOTIFY triggers name the
// change ("transition" moves the phase).
func changeOf(kind string) string {
	if kind == "transition" {
		return "phase"
	}
	return kind
}
