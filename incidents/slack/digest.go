package slack

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/slack-go/slack"

	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// DigestArgs starts the weekly digest: one DigestOrgArgs per organisation
// with Slack.
type DigestArgs struct{}

// Kind implements river.JobArgs.
func (DigestArgs) Kind() string { return "slack_digest" }

// InsertOpts puts the digest on the notify queue.
func (DigestArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: jobs.QueueNotify} }

// DigestOrgArgs posts one organisation's digest for the week ending at
// WeekEnd (a date, so the job is unique per organisation and week).
type DigestOrgArgs struct {
	OrgID   int64  `json:"org_id" river:"unique"`
	WeekEnd string `json:"week_end" river:"unique"` // YYYY-MM-DD
}

// Kind implements river.JobArgs.
func (DigestOrgArgs) Kind() string { return "slack_digest_org" }

// InsertOpts makes the digest once per organisation and week.
func (DigestOrgArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueNotify, UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: 14 * 24 * time.Hour}}
}

// PeriodicJobs schedules the weekly digest.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(7*24*time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return DigestArgs{}, nil },
			&river.PeriodicJobOpts{ID: "slack_weekly_digest"}),
	}
}

type digestWorker struct {
	river.WorkerDefaults[DigestArgs]
	s *Service
}

func (w *digestWorker) Work(ctx context.Context, _ *river.Job[DigestArgs]) error {
	s := w.s
	// read-only join: an organisation has Slack through its bot connection
	// (ours) or its incoming webhook URL (kept in orgs).
	rows, err := s.pool.Query(ctx, `
		SELECT o.id FROM orgs o LEFT JOIN slack_connections c ON c.org_id = o.id
		WHERE o.slack_webhook_url <> '' OR c.bot_token <> '' ORDER BY o.id`)
	if err != nil {
		return fmt.Errorf("list organisations with Slack: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("list organisations with Slack: %w", err)
	}
	week := s.now().UTC().Format("2006-01-02")
	for _, id := range ids {
		if _, err := s.river.Insert(ctx, DigestOrgArgs{OrgID: id, WeekEnd: week}, nil); err != nil {
			return fmt.Errorf("queue digest of org %d: %w", id, err)
		}
	}
	return nil
}

type digestOrgWorker struct {
	river.WorkerDefaults[DigestOrgArgs]
	s *Service
}

func (w *digestOrgWorker) Work(ctx context.Context, job *river.Job[DigestOrgArgs]) error {
	end, err := time.Parse("2006-01-02", job.Args.WeekEnd)
	if err != nil {
		return river.JobCancel(fmt.Errorf("week_end %q: %w", job.Args.WeekEnd, err))
	}
	return w.s.PostDigest(ctx, job.Args.OrgID, end.Add(24*time.Hour))
}

// Digest is one organisation's week.
type Digest struct {
	From, To         time.Time
	Opened, Closed   int
	MedianContain    *time.Duration // identified → contained, incidents contained in the week
	MedianRotate     *time.Duration // identified → eradicated, incidents rotated in the week
	StaleKeys        []string       // names of active keys older than their maximum age
	NeverRotated     []string       // names of active keys never rotated
	DigestOnly       []string       // "key (severity)" of incidents opened in the week on a digest-only route
	OpenAtEnd        int
	UnacknowledgedAt int
}

// BuildDigest computes the organisation's figures for the 7 days before to.
func (s *Service) BuildDigest(ctx context.Context, orgID int64, to time.Time, digestOnly map[string]bool) (Digest, error) {
	d := Digest{From: to.Add(-7 * 24 * time.Hour), To: to}
	f, err := s.incidents.PeriodFigures(ctx, orgID, d.From, d.To)
	if err != nil {
		return d, err
	}
	d.Opened, d.Closed, d.MedianContain, d.MedianRotate = f.Opened, f.Closed, f.MedianContain, f.MedianRotate
	d.OpenAtEnd, d.UnacknowledgedAt = f.OpenNow, f.UnacknowledgedNow
	// The registry owns what "stale" and "never rotated" mean.
	rot, err := keys.NewStore(s.pool).Digest(ctx, orgID)
	if err != nil {
		return d, err
	}
	for _, k := range rot.Stale {
		d.StaleKeys = append(d.StaleKeys, k.Name)
	}
	for _, k := range rot.NeverRotated {
		d.NeverRotated = append(d.NeverRotated, k.Name)
	}
	if len(digestOnly) > 0 {
		opened, err := s.incidents.IdentifiedBetween(ctx, orgID, d.From, d.To)
		if err != nil {
			return d, err
		}
		for _, o := range opened {
			if digestOnly[o.Severity] {
				d.DigestOnly = append(d.DigestOnly, fmt.Sprintf("%s (%s)", Escape(o.KeyName, 100), o.Severity))
			}
		}
	}
	return d, nil
}

func fmtDuration(d *time.Duration) string {
	if d == nil {
		return "-"
	}
	if *d >= 48*time.Hour {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.Round(time.Minute).String()
}

// nameList renders up to 20 key names after a colon, escaped.
func nameList(names []string) string {
	if len(names) == 0 {
		return ""
	}
	const max = 20
	more := ""
	if len(names) > max {
		more = fmt.Sprintf(" and %d more", len(names)-max)
		names = names[:max]
	}
	esc := make([]string, len(names))
	for i, n := range names {
		esc[i] = Escape(n, 100)
	}
	return ": " + strings.Join(esc, ", ") + more
}

// digestText renders a digest as mrkdwn.
func digestText(orgName string, d Digest) string {
	lines := []string{
		fmt.Sprintf(":bar_chart: *Leakwatch weekly digest* for %s, %s – %s", Escape(orgName, 100),
			d.From.UTC().Format("2 Jan"), d.To.Add(-time.Second).UTC().Format("2 Jan 2006")),
		fmt.Sprintf("• Incidents opened: *%d* · closed: *%d* · open now: *%d* (%d not acknowledged)", d.Opened, d.Closed, d.OpenAtEnd, d.UnacknowledgedAt),
		fmt.Sprintf("• Median time to contain: *%s* · to rotate: *%s*", fmtDuration(d.MedianContain), fmtDuration(d.MedianRotate)),
		fmt.Sprintf("• Stale keys (past their maximum age): *%d*", len(d.StaleKeys)) + nameList(d.StaleKeys),
		fmt.Sprintf("• Keys never rotated: *%d*", len(d.NeverRotated)) + nameList(d.NeverRotated),
	}
	if len(d.DigestOnly) > 0 {
		const max = 20
		list := d.DigestOnly
		more := ""
		if len(list) > max {
			more = fmt.Sprintf(" and %d more", len(list)-max)
			list = list[:max]
		}
		lines = append(lines, "• Low-priority incidents (digest only): "+strings.Join(list, ", ")+more)
	}
	return strings.Join(lines, "\n")
}

// PostDigest posts the organisation's digest for the week before to.
func (s *Service) PostDigest(ctx context.Context, orgID int64, to time.Time) error {
	conn, err := s.store.Connection(ctx, orgID)
	if err != nil {
		return err
	}
	if conn.Mode == ModeNone || conn.BrokenAt != nil {
		return nil
	}
	o, err := s.orgs.ByID(ctx, orgID)
	if err != nil {
		return fmt.Errorf("load org %d: %w", orgID, err)
	}
	orgName := o.Name
	digestOnly := map[string]bool{}
	for sev, r := range conn.Routes {
		if r.DigestOnly {
			digestOnly[sev] = true
		}
	}
	d, err := s.BuildDigest(ctx, orgID, to, digestOnly)
	if err != nil {
		return err
	}
	text := digestText(orgName, d)
	blocks := []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}
	fallback := fmt.Sprintf("Leakwatch weekly digest: %d opened, %d closed", d.Opened, d.Closed)
	switch conn.Mode {
	case ModeBot:
		_, _, err := s.api(conn.BotToken).PostMessageContext(ctx, conn.DefaultChannel, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		if err != nil {
			return s.jobError(ctx, conn, fmt.Errorf("post digest of org %d: %w", orgID, err))
		}
	case ModeWebhook:
		msg := &slack.WebhookMessage{Text: fallback, Blocks: &slack.Blocks{BlockSet: blocks}}
		if err := slack.PostWebhookCustomHTTPContext(ctx, conn.WebhookURL, s.cfg.HTTPClient, msg); err != nil {
			return fmt.Errorf("post digest of org %d: %w", orgID, redactURLError(err))
		}
	}
	s.logger.Info("Slack digest sent", slog.Int64("org_id", orgID))
	return nil
}
