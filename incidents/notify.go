package incidents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/slack-go/slack"

	"github.com/leakwatch/leakwatch/internal/jobs"
)

// NotifyArgs queues a notification: with EventID 0, the alert for a newly
// opened incident; otherwise the notification of that timeline entry
// (regression, escalation, manual or failed containment, reminder).
type NotifyArgs struct {
	IncidentID int64 `json:"incident_id" river:"unique"`
	EventID    int64 `json:"event_id,omitempty" river:"unique"`
}

// Kind implements river.JobArgs.
func (NotifyArgs) Kind() string { return "incident_notify" }

// InsertOpts puts alerts on their own queue, once per incident.
func (NotifyArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueNotify, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Notifier posts incident alerts to the organisation's Slack webhook.
type Notifier struct {
	river.WorkerDefaults[NotifyArgs]
	pool       *pgxpool.Pool
	httpClient *http.Client
	baseURL    string // where "Open in Leakwatch" links point
	logger     *slog.Logger
}

// NewNotifier returns the alert worker.
func NewNotifier(pool *pgxpool.Pool, httpClient *http.Client, baseURL string, logger *slog.Logger) *Notifier {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Notifier{pool: pool, httpClient: httpClient, baseURL: strings.TrimRight(baseURL, "/"), logger: logger}
}

type alert struct {
	IncidentID int64
	KeyName    string
	Provider   string
	OrgName    string
	WebhookURL string
	Source     string
	URL        string
	Repo       string
	Path       string
	Line       int
	Actor      string
	Preview    string
	EventAt    *time.Time
	DetectedAt time.Time
	NotifiedAt *time.Time
}

// Work posts the alert unless it was already posted.
func (n *Notifier) Work(ctx context.Context, job *river.Job[NotifyArgs]) error {
	if job.Args.EventID != 0 {
		return n.workEvent(ctx, job.Args)
	}
	var a alert
	err := n.pool.QueryRow(ctx, `
		SELECT i.id, k.name, k.provider, o.name, o.slack_webhook_url, i.notified_at,
			oc.source, oc.url, oc.repo, oc.path, oc.line, oc.actor, oc.preview, oc.event_at, oc.detected_at
		FROM incidents i
		JOIN keys k ON k.id = i.key_id
		JOIN orgs o ON o.id = i.org_id
		JOIN LATERAL (SELECT * FROM occurrences WHERE incident_id = i.id ORDER BY id LIMIT 1) oc ON true
		WHERE i.id = $1`, job.Args.IncidentID).
		Scan(&a.IncidentID, &a.KeyName, &a.Provider, &a.OrgName, &a.WebhookURL, &a.NotifiedAt,
			&a.Source, &a.URL, &a.Repo, &a.Path, &a.Line, &a.Actor, &a.Preview, &a.EventAt, &a.DetectedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("incident %d no longer exists", job.Args.IncidentID))
	}
	if err != nil {
		return fmt.Errorf("load incident %d: %w", job.Args.IncidentID, err)
	}
	if a.NotifiedAt != nil {
		return nil
	}
	if a.WebhookURL == "" {
		n.logger.Info("no Slack webhook configured; alert not sent", slog.Int64("incident_id", a.IncidentID))
		return nil
	}
	msg := n.message(a)
	if err := slack.PostWebhookCustomHTTPContext(ctx, a.WebhookURL, n.httpClient, msg); err != nil {
		// slack-go's error may carry the URL, which is a secret: say only what failed.
		return fmt.Errorf("post Slack alert for incident %d: %w", a.IncidentID, redactURLError(err))
	}
	if _, err := n.pool.Exec(ctx, `UPDATE incidents SET notified_at = now() WHERE id = $1`, a.IncidentID); err != nil {
		return fmt.Errorf("mark incident %d notified: %w", a.IncidentID, err)
	}
	n.logger.Info("Slack alert sent", slog.Int64("incident_id", a.IncidentID))
	return nil
}

func (n *Notifier) message(a alert) *slack.WebhookMessage {
	where := escape(a.Repo)
	if a.Path != "" {
		where += " " + escape(a.Path)
		if a.Line > 0 {
			where += fmt.Sprintf(":%d", a.Line)
		}
	}
	if where == "" {
		where = escape(a.Source)
	}
	link := where
	if a.URL != "" && (strings.HasPrefix(a.URL, "https://") || strings.HasPrefix(a.URL, "http://")) {
		link = "<" + escapeURL(a.URL) + "|" + where + ">"
	}
	text := fmt.Sprintf("Leaked key *%s* (%s) of %s found in %s", escape(a.KeyName), escape(orDash(a.Provider)), escape(a.OrgName), link)
	lines := []string{text}
	if a.Actor != "" {
		lines = append(lines, "Actor: "+escape(a.Actor))
	}
	if a.EventAt != nil {
		lines = append(lines, "Pushed: "+a.EventAt.UTC().Format(time.RFC3339))
	}
	lines = append(lines, "Detected: "+a.DetectedAt.UTC().Format(time.RFC3339))
	if a.Preview != "" {
		lines = append(lines, "Preview: `"+escape(strings.ReplaceAll(a.Preview, "`", "'"))+"`")
	}
	if n.baseURL != "" {
		lines = append(lines, fmt.Sprintf("<%s/incidents#incident-%d|Open in Leakwatch>", escapeURL(n.baseURL), a.IncidentID))
	}
	body := strings.Join(lines, "\n")
	section := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, body, false, false), nil, nil)
	return &slack.WebhookMessage{
		Text:   fmt.Sprintf("Leaked key %s found (incident %d)", escape(a.KeyName), a.IncidentID),
		Blocks: &slack.Blocks{BlockSet: []slack.Block{section}},
	}
}

// escape makes attacker-controlled text inert in Slack mrkdwn: &, < and >
// are the control characters (they form links and @-mentions).
func escape(s string) string {
	s = strings.ReplaceAll(s, "&", "&amp;")
	s = strings.ReplaceAll(s, "<", "&lt;")
	s = strings.ReplaceAll(s, ">", "&gt;")
	const max = 300
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

// escapeURL keeps a URL from closing the <url|text> link syntax.
func escapeURL(u string) string {
	return strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C", " ", "%20").Replace(u)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type redactedError struct{ msg string }

func (e redactedError) Error() string { return e.msg }

// redactURLError replaces errors that may embed the webhook URL.
func redactURLError(err error) error {
	var se slack.StatusCodeError
	if errors.As(err, &se) {
		return fmt.Errorf("slack answered HTTP %d", se.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return redactedError{"request to the Slack webhook failed"}
}

// escalationKinds go to the escalation channel rather than the team's.
var escalationKinds = map[string]bool{"escalated": true, "containment_failed": true}

// workEvent posts the notification of one timeline entry, once.
func (n *Notifier) workEvent(ctx context.Context, args NotifyArgs) error {
	var (
		kind, actor, keyName, provider, orgName, severity, phase string
		teamURL, escalationURL                                   string
		details                                                  map[string]any
		notifiedAt                                               *time.Time
	)
	err := n.pool.QueryRow(ctx, `
		SELECT e.kind, e.actor, e.details, e.notified_at, k.name, k.provider, o.name, i.severity, i.phase,
			o.slack_webhook_url, coalesce((SELECT escalation_slack_url FROM incident_settings WHERE org_id = o.id), '')
		FROM incident_events e
		JOIN incidents i ON i.id = e.incident_id
		JOIN keys k ON k.id = i.key_id
		JOIN orgs o ON o.id = i.org_id
		WHERE e.id = $1 AND e.incident_id = $2`, args.EventID, args.IncidentID).
		Scan(&kind, &actor, &details, &notifiedAt, &keyName, &provider, &orgName, &severity, &phase, &teamURL, &escalationURL)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("timeline entry %d of incident %d no longer exists", args.EventID, args.IncidentID))
	}
	if err != nil {
		return fmt.Errorf("load timeline entry %d: %w", args.EventID, err)
	}
	if notifiedAt != nil {
		return nil
	}
	url := teamURL
	if escalationKinds[kind] && escalationURL != "" {
		url = escalationURL
	}
	if url == "" {
		n.logger.Info("no Slack webhook configured; notification not sent", slog.Int64("incident_id", args.IncidentID), slog.String("kind", kind))
		return nil
	}
	head := map[string]string{
		"regression":         ":rotating_light: Regression: leaked key *%s* (%s) of %s was found again",
		"escalated":          ":sos: Escalation: nobody acknowledged the incident of key *%s* (%s) of %s within its SLA",
		"containment_failed": ":x: Containment failed for key *%s* (%s) of %s: revoke it by hand",
		"containment_manual": ":raised_hand: Key *%s* (%s) of %s must be revoked by hand (the revocation endpoint asked for a human)",
		"reminder":           ":hourglass: Reminder: the incident of key *%s* (%s) of %s is still waiting",
	}[kind]
	if head == "" {
		head = "Incident update for key *%s* (%s) of %s: " + escape(kind)
	}
	lines := []string{fmt.Sprintf(head, escape(keyName), escape(orDash(provider)), escape(orgName)),
		fmt.Sprintf("Severity: %s · Phase: %s", escape(severity), escape(phase))}
	if r, ok := details["reason"].(string); ok && r != "" {
		lines = append(lines, "Reason: "+escape(r))
	}
	if n.baseURL != "" {
		lines = append(lines, fmt.Sprintf("<%s/incidents#incident-%d|Open in Leakwatch>", escapeURL(n.baseURL), args.IncidentID))
	}
	body := strings.Join(lines, "\n")
	msg := &slack.WebhookMessage{
		Text:   fmt.Sprintf("Incident %d: %s", args.IncidentID, escape(kind)),
		Blocks: &slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, body, false, false), nil, nil)}},
	}
	if err := slack.PostWebhookCustomHTTPContext(ctx, url, n.httpClient, msg); err != nil {
		return fmt.Errorf("post %s notification for incident %d: %w", kind, args.IncidentID, redactURLError(err))
	}
	if _, err := n.pool.Exec(ctx, `UPDATE incident_events SET notified_at = now() WHERE id = $1`, args.EventID); err != nil {
		return fmt.Errorf("mark timeline entry %d notified: %w", args.EventID, err)
	}
	n.logger.Info("Slack notification sent", slog.Int64("incident_id", args.IncidentID), slog.String("kind", kind))
	return nil
}
