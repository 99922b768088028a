package incidents

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ListForOrg returns the organisation's most recent incidents, newest
// first: what the dashboard of one tenant may see.
func (s *Service) ListForOrg(ctx context.Context, orgID int64, limit int) ([]Summary, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT i.id, o.name, k.name, k.provider, i.state, i.phase, i.severity, i.source_url, i.first_seen_at, i.last_seen_at,
			(SELECT count(*) FROM occurrences oc WHERE oc.incident_id = i.id), i.notified_at
		FROM incidents i JOIN keys k ON k.id = i.key_id JOIN orgs o ON o.id = i.org_id
		WHERE i.org_id = $1
		ORDER BY i.id DESC LIMIT $2`, orgID, limit)
	if err != nil {
		return nil, fmt.Errorf("list incidents of organisation %d: %w", orgID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Summary, error) {
		var s Summary
		err := r.Scan(&s.ID, &s.OrgName, &s.KeyName, &s.Provider, &s.State, &s.Phase, &s.Severity, &s.SourceURL, &s.FirstSeenAt, &s.LastSeenAt, &s.Occurrences, &s.NotifiedAt)
		return s, err
	})
}
