package incidents

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrInvalidQuery is a queue filter, sort or cursor the queue cannot use.
var ErrInvalidQuery = errors.New("invalid query")

// Sorts the queue offers, each keyset-paginated.
const (
	SortNewest   = "newest"    // id, newest first (the default)
	SortOldest   = "oldest"    // id, oldest first
	SortSeverity = "severity"  // most severe first, then newest
	SortLastSeen = "last_seen" // most recently seen first
)

// QueueParams filters, sorts and pages the incident queue. Zero values
// filter nothing.
type QueueParams struct {
	Phase          Phase
	State          string // "open", "closed"
	Severity       Severity
	Source         string // an occurrence source: "github", "gist", "pastebin", …
	KeyID          int64
	AssigneeID     int64 // a member; -1: nobody
	Unacknowledged bool  // open and not acknowledged
	Escalated      bool
	Q              string // text in the key's name, a repository or a URL
	Sort           string
	Cursor         string // NextCursor of the previous page
	Limit          int    // 1..500, default 50
}

// QueueItem is one row of the queue: the incident and when its SLA falls
// due (nil: none running).
type QueueItem struct {
	Incident
	// DueAt is the acknowledgement deadline of an unacknowledged open
	// incident, else the end of the phase limit of an open one.
	DueAt   *time.Time `json:"due_at"`
	DueKind string     `json:"due_kind,omitempty"` // "acknowledge" or "phase"
}

// Overdue tells whether the SLA has passed at now.
func (q QueueItem) Overdue(now time.Time) bool { return q.DueAt != nil && now.After(*q.DueAt) }

// QueuePage is one page of the queue.
type QueuePage struct {
	Items      []QueueItem `json:"items"`
	NextCursor string      `json:"next_cursor"`
}

// Queue returns one page of the organisation's incidents, filtered and
// sorted, with a cursor to the next page: there is no cap, every incident
// is reachable. The cursor is opaque and carries the sort's key and the id.
func (s *Service) Queue(ctx context.Context, orgID int64, p QueueParams) (QueuePage, error) {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	if p.Limit > 500 {
		return QueuePage{}, fmt.Errorf("%w: limit must be at most 500", ErrInvalidQuery)
	}
	if p.Sort == "" {
		p.Sort = SortNewest
	}
	if p.State != "" && p.State != "open" && p.State != "closed" {
		return QueuePage{}, fmt.Errorf("%w: state must be open or closed", ErrInvalidQuery)
	}
	if p.Phase != "" && !p.Phase.Valid() {
		return QueuePage{}, fmt.Errorf("%w: unknown phase %q", ErrInvalidQuery, p.Phase)
	}
	if p.Severity != "" && p.Severity.Rank() < 0 {
		return QueuePage{}, fmt.Errorf("%w: unknown severity %q", ErrInvalidQuery, p.Severity)
	}
	args := []any{orgID}
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	where := []string{"i.org_id = $1"}
	if p.Phase != "" {
		where = append(where, "i.phase = "+arg(string(p.Phase)))
	}
	if p.State != "" {
		where = append(where, "i.state = "+arg(p.State))
	}
	if p.Severity != "" {
		where = append(where, "i.severity = "+arg(string(p.Severity)))
	}
	if p.Source != "" {
		where = append(where, "EXISTS (SELECT 1 FROM occurrences oc WHERE oc.incident_id = i.id AND oc.source = "+arg(p.Source)+")")
	}
	if p.KeyID > 0 {
		where = append(where, "i.key_id = "+arg(p.KeyID))
	}
	switch {
	case p.AssigneeID > 0:
		where = append(where, "i.assignee_id = "+arg(p.AssigneeID))
	case p.AssigneeID < 0:
		where = append(where, "i.assignee_id IS NULL")
	}
	if p.Unacknowledged {
		where = append(where, "i.state = 'open' AND i.acknowledged_at IS NULL")
	}
	if p.Escalated {
		where = append(where, "i.escalated_at IS NOT NULL")
	}
	if q := strings.TrimSpace(p.Q); q != "" {
		// A literal substring: LIKE's wildcards in the query are escaped.
		pat := arg("%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q) + "%")
		// read-only join: the search matches key names, and a page is
		// filtered before its LIMIT, so the names must be in the query.
		where = append(where, "(EXISTS (SELECT 1 FROM keys k WHERE k.id = i.key_id AND k.name ILIKE "+pat+") OR i.source_url ILIKE "+pat+
			" OR EXISTS (SELECT 1 FROM occurrences oc WHERE oc.incident_id = i.id AND (oc.repo ILIKE "+pat+" OR oc.url ILIKE "+pat+")))")
	}
	var order string
	var cur []string
	if p.Cursor != "" {
		cur = strings.SplitN(p.Cursor, ".", 2)
	}
	curID := func(i int) (int64, error) {
		if len(cur) <= i {
			return 0, fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
		}
		id, err := strconv.ParseInt(cur[i], 10, 64)
		if err != nil || id <= 0 {
			return 0, fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
		}
		return id, nil
	}
	sevRank := "CASE i.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END"
	switch p.Sort {
	case SortNewest:
		order = "i.id DESC"
		if cur != nil {
			id, err := curID(0)
			if err != nil {
				return QueuePage{}, err
			}
			where = append(where, "i.id < "+arg(id))
		}
	case SortOldest:
		order = "i.id ASC"
		if cur != nil {
			id, err := curID(0)
			if err != nil {
				return QueuePage{}, err
			}
			where = append(where, "i.id > "+arg(id))
		}
	case SortSeverity:
		order = sevRank + " DESC, i.id DESC"
		if cur != nil {
			id, err := curID(1)
			if err != nil {
				return QueuePage{}, err
			}
			rank, err := strconv.Atoi(cur[0])
			if err != nil {
				return QueuePage{}, fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
			}
			where = append(where, "("+sevRank+", i.id) < ("+arg(rank)+"::int, "+arg(id)+"::bigint)")
		}
	case SortLastSeen:
		order = "i.last_seen_at DESC, i.id DESC"
		if cur != nil {
			id, err := curID(1)
			if err != nil {
				return QueuePage{}, err
			}
			us, err := strconv.ParseInt(cur[0], 10, 64)
			if err != nil {
				return QueuePage{}, fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
			}
			where = append(where, "(i.last_seen_at, i.id) < ("+arg(time.UnixMicro(us).UTC())+"::timestamptz, "+arg(id)+"::bigint)")
		}
	default:
		return QueuePage{}, fmt.Errorf("%w: sort must be newest, oldest, severity or last_seen", ErrInvalidQuery)
	}
	lim := arg(p.Limit + 1)
	rows, err := s.pool.Query(ctx, `SELECT `+incidentColumns+`
		FROM incidents i
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY `+order+` LIMIT `+lim, args...)
	if err != nil {
		return QueuePage{}, fmt.Errorf("incident queue of org %d: %w", orgID, err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Incident, error) { return scanIncident(r) })
	if err == nil {
		err = withKeys(ctx, s.pool, list)
	}
	if err != nil {
		return QueuePage{}, fmt.Errorf("incident queue of org %d: %w", orgID, err)
	}
	page := QueuePage{Items: make([]QueueItem, 0, len(list))}
	if len(list) > p.Limit {
		// One more row than asked says a next page exists: no empty last page.
		list = list[:p.Limit]
		last := list[len(list)-1]
		switch p.Sort {
		case SortNewest, SortOldest:
			page.NextCursor = strconv.FormatInt(last.ID, 10)
		case SortSeverity:
			page.NextCursor = strconv.Itoa(last.Severity.Rank()+1) + "." + strconv.FormatInt(last.ID, 10)
		case SortLastSeen:
			page.NextCursor = strconv.FormatInt(last.LastSeenAt.UnixMicro(), 10) + "." + strconv.FormatInt(last.ID, 10)
		}
	}
	st, err := s.Settings(ctx, orgID)
	if err != nil {
		return QueuePage{}, err
	}
	for _, in := range list {
		page.Items = append(page.Items, withDue(in, st))
	}
	return page, nil
}

// withDue computes the running SLA of an incident, as Sweep applies it.
func withDue(in Incident, st Settings) QueueItem {
	q := QueueItem{Incident: in}
	if !in.Phase.Open() {
		return q
	}
	if in.AcknowledgedAt == nil && in.EscalatedAt == nil && in.Phase == PhaseIdentified {
		secs := map[Severity]int{SeverityCritical: st.AckCriticalS, SeverityHigh: st.AckHighS, SeverityMedium: st.AckMediumS, SeverityLow: st.AckLowS}[in.Severity]
		due := in.IdentifiedAt.Add(time.Duration(secs) * time.Second)
		q.DueAt, q.DueKind = &due, "acknowledge"
		return q
	}
	start := in.IdentifiedAt
	for _, t := range []*time.Time{in.ContainedAt, in.EradicatedAt, in.RecoveredAt} {
		if t != nil && t.After(start) {
			start = *t
		}
	}
	due := start.Add(time.Duration(st.PhaseLimitS) * time.Second)
	q.DueAt, q.DueKind = &due, "phase"
	return q
}

// Sources returns the sources the organisation's incidents were seen on,
// for the queue's source filter.
func (s *Service) Sources(ctx context.Context, orgID int64) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT oc.source FROM occurrences oc JOIN incidents i ON i.id = oc.incident_id
		WHERE i.org_id = $1 ORDER BY 1`, orgID)
	if err != nil {
		return nil, fmt.Errorf("incident sources of org %d: %w", orgID, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Phases lists every phase, in workflow order.
var Phases = []Phase{PhaseIdentified, PhaseContained, PhaseEradicated, PhaseRecovered, PhaseClosed, PhaseFalsePositive, PhaseAcceptedRisk}

// Valid tells whether p is a known phase.
func (p Phase) Valid() bool { return slices.Contains(Phases, p) }
