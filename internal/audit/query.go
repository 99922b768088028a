package audit

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Filter narrows the audit log for the dashboard; zero values filter
// nothing. Text filters are literal prefixes (Action "incident." finds
// every incident action), case-insensitive for Actor.
type Filter struct {
	Action     string
	Actor      string
	ObjectType string
	ObjectID   string
	Before     int64 // cursor: entries with a smaller id
	Limit      int   // 1..1000, default 100
}

func (f Filter) where(orgID int64) (string, []any) {
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	args := []any{orgID, esc.Replace(f.Action) + "%", esc.Replace(f.Actor) + "%", f.ObjectType, f.ObjectID}
	return ` WHERE org_id = $1 AND action LIKE $2 AND actor ILIKE $3 AND ($4 = '' OR object_type = $4) AND ($5 = '' OR object_id = $5)`, args
}

// Search returns one page of the organisation's entries matching f, newest
// first.
func (s *Store) Search(ctx context.Context, orgID int64, f Filter) ([]Entry, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	if f.Before <= 0 {
		f.Before = 1<<63 - 1
	}
	where, args := f.where(orgID)
	args = append(args, f.Before, f.Limit)
	rows, err := s.pool.Query(ctx, selectEntries+where+` AND id < $6 ORDER BY id DESC LIMIT $7`, args...)
	if err != nil {
		return nil, fmt.Errorf("search audit log of organisation %d: %w", orgID, err)
	}
	return pgx.CollectRows(rows, scanEntry)
}

// ExportCSV writes every entry matching f (cursor and limit ignored),
// oldest first, as CSV for spreadsheets. A cell that a spreadsheet would
// run as a formula (=, +, -, @, tab, CR) is prefixed with a quote (OWASP
// "CSV injection"): actors and details can come from outside.
func (s *Store) ExportCSV(ctx context.Context, orgID int64, f Filter, w io.Writer) error {
	where, args := f.where(orgID)
	rows, err := s.pool.Query(ctx, selectEntries+where+` ORDER BY id`, args...)
	if err != nil {
		return fmt.Errorf("export audit log of organisation %d: %w", orgID, err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"id", "time", "actor", "action", "object_type", "object_id", "details", "ip", "user_agent"}); err != nil {
		return err
	}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return err
		}
		d, _ := json.Marshal(e.Details)
		rec := []string{strconv.FormatInt(e.ID, 10), e.CreatedAt.UTC().Format(time.RFC3339), e.Actor, e.Action, e.ObjectType, e.ObjectID, string(d), e.IP, e.UserAgent}
		for i, v := range rec {
			if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
				rec[i] = "'" + v
			}
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("export audit log: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export audit log of organisation %d: %w", orgID, err)
	}
	cw.Flush()
	return cw.Error()
}
