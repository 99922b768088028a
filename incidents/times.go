package incidents

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// WeekTimes are the response times of the incidents identified in one UTC
// week (starting Monday), in seconds; nil when no incident got that far.
type WeekTimes struct {
	Week       string   `json:"week"` // YYYY-MM-DD, the Monday
	Incidents  int      `json:"incidents"`
	DetectP50  *float64 `json:"time_to_detect_p50_seconds"`
	DetectP90  *float64 `json:"time_to_detect_p90_seconds"`
	ContainP50 *float64 `json:"time_to_contain_p50_seconds"`
	ContainP90 *float64 `json:"time_to_contain_p90_seconds"`
	RotateP50  *float64 `json:"time_to_rotate_p50_seconds"`
	RotateP90  *float64 `json:"time_to_rotate_p90_seconds"`
}

// TimesByWeek returns the time to detect, contain and rotate (p50, p90)
// per week over the last weeks weeks, oldest first, only weeks with
// incidents: whether the team gets faster shows over time, not in one
// 30-day figure (Stats has that). Same definitions as Stats.
func (s *Service) TimesByWeek(ctx context.Context, orgID int64, weeks int) ([]WeekTimes, error) {
	if weeks <= 0 || weeks > 104 {
		weeks = 12
	}
	since := s.now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -7*weeks)
	rows, err := s.pool.Query(ctx, `
		SELECT to_char(date_trunc('week', identified_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD'), count(*)::int,
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM f.detect)),
			percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM f.detect)),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM contained_at - identified_at)),
			percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM contained_at - identified_at)),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM eradicated_at - identified_at)),
			percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM eradicated_at - identified_at))
		FROM incidents LEFT JOIN LATERAL (
			SELECT oc.detected_at - oc.event_at AS detect FROM occurrences oc
			WHERE oc.incident_id = incidents.id ORDER BY oc.id LIMIT 1) f ON true
		WHERE org_id = $1 AND identified_at >= $2
		GROUP BY 1 ORDER BY 1`, orgID, since)
	if err != nil {
		return nil, fmt.Errorf("weekly response times of org %d: %w", orgID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WeekTimes, error) {
		var w WeekTimes
		return w, r.Scan(&w.Week, &w.Incidents, &w.DetectP50, &w.DetectP90, &w.ContainP50, &w.ContainP90, &w.RotateP50, &w.RotateP90)
	})
	if err != nil {
		return nil, fmt.Errorf("weekly response times of org %d: %w", orgID, err)
	}
	return out, nil
}
