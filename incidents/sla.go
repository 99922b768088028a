package incidents

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// Default limits for organisations without incident_settings.
const (
	DefaultAckCritical = 15 * time.Minute
	DefaultAckHigh     = time.Hour
	DefaultAckMedium   = 4 * time.Hour
	DefaultAckLow      = 24 * time.Hour
	DefaultPhaseLimit  = 24 * time.Hour
)

// SweepArgs is the periodic SLA sweep: escalate unacknowledged incidents and
// remind about incidents stuck in a phase.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "incident_sla_sweep" }

// InsertOpts makes concurrent sweeps in the same minute one job.
func (SweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueIncidents, UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
}

// PeriodicJobs are the incident jobs River's leader enqueues on a schedule.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(time.Minute),
			func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{}, nil },
			&river.PeriodicJobOpts{ID: "incident_sla_sweep", RunOnStart: true}),
	}
}

// Sweeper works SweepArgs.
type Sweeper struct {
	river.WorkerDefaults[SweepArgs]
	svc *Service
}

// NewSweeper returns the SLA sweep worker; it uses the Service's clock.
func NewSweeper(svc *Service) *Sweeper { return &Sweeper{svc: svc} }

// Work runs one sweep.
func (w *Sweeper) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, _, err := w.svc.Sweep(ctx)
	return err
}

// Sweep escalates incidents nobody has acted on within their org's limit
// for their severity (a timeline entry and a notification to the escalation
// channel): still identified, not acknowledged, and not contained by a
// revocation endpoint or a built-in revoker. An incident already contained,
// rotated or recovered is being handled and is never escalated. It reminds about incidents that stayed in a phase longer than
// the org's phase limit (again after each further limit). Each incident's
// change and its notification job commit together; a second sweep finds
// nothing left to do.
func (s *Service) Sweep(ctx context.Context) (escalated, reminded int, err error) {
	now := s.now()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT i.id, i.severity FROM incidents i LEFT JOIN incident_settings st ON st.org_id = i.org_id
			WHERE i.state = 'open' AND i.acknowledged_at IS NULL AND i.escalated_at IS NULL
			  AND i.phase = 'identified' AND i.containment <> 'contained'
			  AND i.identified_at + make_interval(secs => CASE i.severity
					WHEN 'critical' THEN coalesce(st.ack_critical_s, $2)
					WHEN 'high' THEN coalesce(st.ack_high_s, $3)
					WHEN 'medium' THEN coalesce(st.ack_medium_s, $4)
					ELSE coalesce(st.ack_low_s, $5) END) <= $1
			ORDER BY i.id LIMIT 500
			FOR UPDATE OF i SKIP LOCKED`, now,
			DefaultAckCritical.Seconds(), DefaultAckHigh.Seconds(), DefaultAckMedium.Seconds(), DefaultAckLow.Seconds())
		if err != nil {
			return err
		}
		type due struct {
			id       int64
			severity string
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (due, error) {
			var d due
			return d, r.Scan(&d.id, &d.severity)
		})
		if err != nil {
			return err
		}
		for _, d := range list {
			if _, err := tx.Exec(ctx, `UPDATE incidents SET escalated_at = $2 WHERE id = $1`, d.id, now); err != nil {
				return err
			}
			_, err := s.addEventTx(ctx, tx, d.id, now, ActorSystem, "escalated", "", "", map[string]any{"reason": "not acknowledged within the " + d.severity + " SLA"})
			if err != nil {
				return err
			}
			s.logger.Warn("incident escalated", slog.Int64("incident_id", d.id), slog.String("severity", d.severity))
		}
		escalated = len(list)

		rows, err = tx.Query(ctx, `
			SELECT i.id, i.phase FROM incidents i LEFT JOIN incident_settings st ON st.org_id = i.org_id
			WHERE i.state = 'open'
			  AND greatest(CASE i.phase WHEN 'identified' THEN i.identified_at WHEN 'contained' THEN i.contained_at
					WHEN 'eradicated' THEN i.eradicated_at WHEN 'recovered' THEN i.recovered_at END,
					i.reminded_at) + make_interval(secs => coalesce(st.phase_limit_s, $2)) <= $1
			ORDER BY i.id LIMIT 500
			FOR UPDATE OF i SKIP LOCKED`, now, DefaultPhaseLimit.Seconds())
		if err != nil {
			return err
		}
		type stuck struct {
			id    int64
			phase string
		}
		slist, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stuck, error) {
			var st stuck
			return st, r.Scan(&st.id, &st.phase)
		})
		if err != nil {
			return err
		}
		for _, st := range slist {
			if _, err := tx.Exec(ctx, `UPDATE incidents SET reminded_at = $2 WHERE id = $1`, st.id, now); err != nil {
				return err
			}
			_, err := s.addEventTx(ctx, tx, st.id, now, ActorSystem, "reminder", "", "", map[string]any{"reason": "still " + st.phase})
			if err != nil {
				return err
			}
		}
		reminded = len(slist)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("SLA sweep: %w", err)
	}
	return escalated, reminded, nil
}
