package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/slack-go/slack"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// Config holds the Service's settings.
type Config struct {
	// APIURL is the Slack Web API base, with its trailing slash; empty:
	// https://slack.com/api/. Tests point it at slacktest.
	APIURL string
	// HTTPClient makes Slack calls (Web API and incoming webhooks): the
	// deployment's guarded client; nil: webhook.NewHTTPClient with no
	// allowlist (public addresses only) and a 10 s timeout.
	HTTPClient *http.Client
	// BaseURL is the dashboard's public URL, for "Open in Leakwatch".
	BaseURL string
	Logger  *slog.Logger
}

// Service posts and updates incident messages and handles clicks.
type Service struct {
	pool      *pgxpool.Pool
	store     *Store
	river     *jobs.Client
	incidents Incidents
	members   Members
	orgs      Orgs
	cfg       Config
	logger    *slog.Logger
	now       func() time.Time

	// afterPost, when set (tests), runs right after a successful post and
	// before its ts is recorded; an error simulates a crash there.
	afterPost func(what string) error
}

// Deps are what the Service asks of the packages that own incidents,
// members and organisations; each is a small interface defined here.
type Deps struct {
	Incidents Incidents // incidents.Service
	Members   Members   // auth.Store
	Orgs      Orgs      // orgs.Store
}

// Members finds who clicked a button, and who is assigned (auth.Store).
type Members interface {
	MemberByEmail(ctx context.Context, orgID int64, email string) (auth.Membership, error)
	// UserByID names an incident's assignee.
	UserByID(ctx context.Context, id int64) (auth.User, error)
}

// Orgs names an organisation in its digest (orgs.Store).
type Orgs interface {
	ByID(ctx context.Context, id int64) (orgs.Org, error)
}

// NewService returns the Service. riverClient may be insert-only: the
// Service only inserts jobs (its workers are built from it, before the
// client that works them). The timeline reaches Slack through a Notifier.
func NewService(pool *pgxpool.Pool, store *Store, riverClient *jobs.Client, deps Deps, cfg Config) *Service {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = webhook.NewHTTPClient(webhook.Guard{}, 10*time.Second)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.BaseURL = baseURLOf(cfg.BaseURL)
	return &Service{pool: pool, store: store, river: riverClient, incidents: deps.Incidents, members: deps.Members, orgs: deps.Orgs,
		cfg: cfg, logger: cfg.Logger, now: time.Now}
}

// Store returns the connection store.
func (s *Service) Store() *Store { return s.store }

func (s *Service) api(token string) *slack.Client {
	opts := []slack.Option{slack.OptionHTTPClient(s.cfg.HTTPClient)}
	if s.cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(s.cfg.APIURL))
	}
	return slack.New(token, opts...)
}

// SyncArgs brings an incident's Slack messages up to date with one
// timeline entry.
type SyncArgs struct {
	IncidentID int64 `json:"incident_id" river:"unique"`
	EventID    int64 `json:"event_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (SyncArgs) Kind() string { return "slack_sync" }

// InsertOpts puts Slack work on the notify queue, once per entry.
func (SyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueNotify, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// syncWorker works SyncArgs.
type syncWorker struct {
	river.WorkerDefaults[SyncArgs]
	s *Service
}

// Timeout bounds one sync.
func (w *syncWorker) Timeout(*river.Job[SyncArgs]) time.Duration { return time.Minute }

func (w *syncWorker) Work(ctx context.Context, job *river.Job[SyncArgs]) error {
	return w.s.sync(ctx, job.Args)
}

// AddWorkers registers the Slack workers.
func AddWorkers(w *river.Workers, s *Service) {
	river.AddWorker(w, &syncWorker{s: s})
	river.AddWorker(w, &actionWorker{s: s})
	river.AddWorker(w, &testWorker{s: s})
	river.AddWorker(w, &digestWorker{s: s})
	river.AddWorker(w, &digestOrgWorker{s: s})
}

func (s *Service) sync(ctx context.Context, a SyncArgs) error {
	v, err := s.loadView(ctx, a.IncidentID)
	if errors.Is(err, incidents.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("incident %d no longer exists", a.IncidentID))
	}
	if err != nil {
		return err
	}
	e, err := loadEvent(ctx, s.incidents, a.IncidentID, a.EventID)
	if errors.Is(err, incidents.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("timeline entry %d of incident %d no longer exists", a.EventID, a.IncidentID))
	}
	if err != nil {
		return err
	}
	conn, err := s.store.Connection(ctx, v.OrgID)
	if err != nil {
		return err
	}
	route := conn.Route(v.Severity)
	if route.DigestOnly && !escalationKinds[e.Kind] {
		return nil
	}
	switch conn.Mode {
	case ModeWebhook:
		return s.syncWebhook(ctx, conn, route, v, e)
	case ModeBot:
		if conn.BrokenAt != nil {
			s.logger.Warn("Slack connection broken; incident update not sent", slog.Int64("org_id", v.OrgID), slog.Int64("incident_id", v.IncidentID))
			return nil
		}
		return s.jobError(ctx, conn, s.syncBot(ctx, conn, route, v, e))
	default:
		s.logger.Info("Slack not connected; incident update not sent", slog.Int64("org_id", v.OrgID), slog.Int64("incident_id", v.IncidentID))
		return nil
	}
}

// brokenCodes are Slack errors that no retry will cure.
var brokenCodes = map[string]bool{"token_revoked": true, "invalid_auth": true, "account_inactive": true,
	"not_authed": true, "team_access_not_granted": true, "token_expired": true}

// jobError turns Slack's answers into River outcomes: rate limits snooze
// for as long as Slack asks, a dead token marks the connection broken and
// stops retrying, anything else is retried with River's backoff.
func (s *Service) jobError(ctx context.Context, conn Connection, err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		wait := max(rl.RetryAfter, time.Second)
		s.logger.Info("Slack rate limit; job snoozed", slog.Int64("org_id", conn.OrgID), slog.Duration("retry_after", wait))
		return river.JobSnooze(wait)
	}
	if code := slackCode(err); brokenCodes[code] {
		if mErr := s.store.MarkBroken(ctx, conn.OrgID, code); mErr != nil {
			return mErr
		}
		s.logger.Warn("Slack refused the bot token; connection marked broken", slog.Int64("org_id", conn.OrgID), slog.String("error", code))
		return river.JobCancel(fmt.Errorf("Slack connection of org %d broken: %s", conn.OrgID, code))
	}
	return err
}

func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

const (
	metaIncident = "leakwatch_incident"
	metaTimeline = "leakwatch_timeline"
)

func (s *Service) syncBot(ctx context.Context, conn Connection, route Route, v view, e event) error {
	// One worker at a time per incident, so two entries arriving together
	// cannot both post the living message.
	// The lock is transaction-level, in a transaction held open meanwhile:
	// a transaction pooler (PgBouncer) keeps a transaction on one server
	// session, not a session-level lock's statements.
	lock, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin incident lock: %w", err)
	}
	defer lock.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('leakwatch.slack.incident', $1))`, v.IncidentID); err != nil {
		return fmt.Errorf("lock incident %d: %w", v.IncidentID, err)
	}

	api := s.api(conn.BotToken)
	if v.Assignee != "" {
		// A mention notifies the assignee; without a Slack account (or the
		// users:read.email scope) the email is shown instead.
		if u, err := api.GetUserByEmailContext(ctx, v.Assignee); err == nil {
			v.AssigneeSlackID = u.ID
		} else if rl := (*slack.RateLimitedError)(nil); errors.As(err, &rl) {
			return err
		}
	}
	channel, ts, created, err := s.ensureRoot(ctx, api, route, v)
	if err != nil {
		return err
	}
	if e.Kind != "opened" {
		if err := s.ensurePost(ctx, api, v, e, channel, ts, eventText(v, e)); err != nil {
			return err
		}
	}
	if escalationKinds[e.Kind] && conn.EscalationChannel != "" && conn.EscalationChannel != channel {
		if err := s.ensurePost(ctx, api, v, e, conn.EscalationChannel, "", "<!here> "+webhookText(v, e, s.cfg.BaseURL)); err != nil {
			return err
		}
	}
	if !created {
		text, blocks := alertBlocks(v, s.cfg.BaseURL, route.Mention, true)
		if _, _, _, err := api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...)); err != nil {
			return fmt.Errorf("update Slack message of incident %d: %w", v.IncidentID, err)
		}
		if _, err := s.pool.Exec(ctx, `UPDATE slack_messages SET updated_at = now() WHERE incident_id = $1`, v.IncidentID); err != nil {
			return fmt.Errorf("record update of incident %d: %w", v.IncidentID, err)
		}
	}
	if err := s.incidents.MarkEntryNotified(ctx, e.ID); err != nil {
		return err
	}
	s.logger.Info("Slack incident message synced", slog.Int64("incident_id", v.IncidentID), slog.Int64("event_id", e.ID), slog.String("kind", e.Kind))
	return nil
}

// ensureRoot returns the incident's living message, posting it if needed;
// created says it was posted now (so it is already current).
func (s *Service) ensureRoot(ctx context.Context, api *slack.Client, route Route, v view) (channel, ts string, created bool, err error) {
	var claimedAt time.Time
	err = s.pool.QueryRow(ctx, `SELECT channel, ts, claimed_at FROM slack_messages WHERE incident_id = $1`, v.IncidentID).
		Scan(&channel, &ts, &claimedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		channel = route.Channel
		if channel == "" {
			return "", "", false, fmt.Errorf("org %d has no Slack channel: %w", v.OrgID, ErrNotConnected)
		}
		// The claim is committed before the post: after a crash, the retry
		// knows a post may exist.
		if _, err := s.pool.Exec(ctx, `INSERT INTO slack_messages (incident_id, channel) VALUES ($1, $2)`, v.IncidentID, channel); err != nil {
			return "", "", false, fmt.Errorf("claim Slack message of incident %d: %w", v.IncidentID, err)
		}
	case err != nil:
		return "", "", false, fmt.Errorf("load Slack message of incident %d: %w", v.IncidentID, err)
	case ts != "":
		return channel, ts, false, nil
	default:
		found, err := s.findOwn(ctx, api, channel, "", claimedAt, metaIncident, "incident_id", v.IncidentID)
		if err != nil {
			return "", "", false, err
		}
		if found != "" {
			s.logger.Info("adopted Slack message posted before a crash", slog.Int64("incident_id", v.IncidentID))
			if err := s.recordRoot(ctx, v.IncidentID, found); err != nil {
				return "", "", false, err
			}
			return channel, found, false, nil
		}
	}
	text, blocks := alertBlocks(v, s.cfg.BaseURL, route.Mention, true)
	_, ts, err = api.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: metaIncident, EventPayload: map[string]any{
			"incident_id": strconv.FormatInt(v.IncidentID, 10)}}))
	if err != nil {
		return "", "", false, fmt.Errorf("post Slack alert of incident %d: %w", v.IncidentID, err)
	}
	if s.afterPost != nil {
		if err := s.afterPost("root"); err != nil {
			return "", "", false, err
		}
	}
	if err := s.recordRoot(ctx, v.IncidentID, ts); err != nil {
		return "", "", false, err
	}
	return channel, ts, true, nil
}

func (s *Service) recordRoot(ctx context.Context, incidentID int64, ts string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE slack_messages SET ts = $2, posted_at = now() WHERE incident_id = $1`, incidentID, ts); err != nil {
		return fmt.Errorf("record Slack message of incident %d: %w", incidentID, err)
	}
	return s.incidents.MarkNotified(ctx, incidentID)
}

// ensurePost posts text for entry e to channel (threaded under threadTS
// when set) unless it already was.
func (s *Service) ensurePost(ctx context.Context, api *slack.Client, v view, e event, channel, threadTS, text string) error {
	var ts string
	var claimedAt time.Time
	err := s.pool.QueryRow(ctx, `SELECT ts, claimed_at FROM slack_posts WHERE event_id = $1 AND channel = $2`, e.ID, channel).
		Scan(&ts, &claimedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := s.pool.Exec(ctx, `INSERT INTO slack_posts (event_id, channel, incident_id) VALUES ($1, $2, $3)`, e.ID, channel, v.IncidentID); err != nil {
			return fmt.Errorf("claim Slack post of entry %d: %w", e.ID, err)
		}
	case err != nil:
		return fmt.Errorf("load Slack post of entry %d: %w", e.ID, err)
	case ts != "":
		return nil
	default:
		found, err := s.findOwn(ctx, api, channel, threadTS, claimedAt, metaTimeline, "event_id", e.ID)
		if err != nil {
			return err
		}
		if found != "" {
			return s.recordPost(ctx, e.ID, channel, found)
		}
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: metaTimeline, EventPayload: map[string]any{
			"incident_id": strconv.FormatInt(v.IncidentID, 10), "event_id": strconv.FormatInt(e.ID, 10)}})}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	_, ts, err = api.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		return fmt.Errorf("post Slack update %s of incident %d: %w", e.Kind, v.IncidentID, err)
	}
	if s.afterPost != nil {
		if err := s.afterPost("reply"); err != nil {
			return err
		}
	}
	return s.recordPost(ctx, e.ID, channel, ts)
}

func (s *Service) recordPost(ctx context.Context, eventID int64, channel, ts string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE slack_posts SET ts = $3, posted_at = now() WHERE event_id = $1 AND channel = $2`, eventID, channel, ts); err != nil {
		return fmt.Errorf("record Slack post of entry %d: %w", eventID, err)
	}
	return nil
}

// findOwn looks for a message Leakwatch posted (identified by its metadata)
// since a claim, in the channel or in a thread.
func (s *Service) findOwn(ctx context.Context, api *slack.Client, channel, threadTS string, since time.Time, eventType, key string, id int64) (string, error) {
	want := strconv.FormatInt(id, 10)
	var msgs []slack.Message
	oldest := fmt.Sprintf("%d.000000", since.Add(-2*time.Minute).Unix())
	if threadTS == "" {
		resp, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
			ChannelID: channel, Oldest: oldest, Limit: 200, IncludeAllMetadata: true})
		if err != nil {
			return "", fmt.Errorf("search channel history: %w", err)
		}
		msgs = resp.Messages
	} else {
		var err error
		msgs, _, _, err = api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
			ChannelID: channel, Timestamp: threadTS, Oldest: oldest, Limit: 200, IncludeAllMetadata: true})
		if err != nil {
			return "", fmt.Errorf("search thread: %w", err)
		}
	}
	for _, m := range msgs {
		if m.Metadata.EventType == eventType && fmt.Sprint(m.Metadata.EventPayload[key]) == want {
			return m.Timestamp, nil
		}
	}
	return "", nil
}

// syncWebhook posts through an incoming webhook: the alert when the
// incident opens, then the notable entries, each once.
func (s *Service) syncWebhook(ctx context.Context, conn Connection, route Route, v view, e event) error {
	if e.Kind != "opened" && !webhookKinds[e.Kind] {
		return nil
	}
	var postedAt *time.Time
	err := s.pool.QueryRow(ctx, `
		INSERT INTO slack_posts (event_id, channel, incident_id) VALUES ($1, '', $2)
		ON CONFLICT (event_id, channel) DO UPDATE SET channel = EXCLUDED.channel
		RETURNING posted_at`, e.ID, v.IncidentID).Scan(&postedAt)
	if err != nil {
		return fmt.Errorf("claim webhook post of entry %d: %w", e.ID, err)
	}
	if postedAt != nil {
		return nil
	}
	// An incoming webhook cannot be searched: a crash between post and
	// commit re-posts (at least once) rather than risk losing the alert.
	msg := &slack.WebhookMessage{}
	if e.Kind == "opened" {
		text, blocks := alertBlocks(v, s.cfg.BaseURL, route.Mention, false)
		msg.Text, msg.Blocks = text, &slack.Blocks{BlockSet: blocks}
	} else {
		body := webhookText(v, e, s.cfg.BaseURL)
		if escalationKinds[e.Kind] || route.Mention != "" {
			body = "<!here> " + body
		}
		msg.Text = fmt.Sprintf("Incident %d: %s", v.IncidentID, plain(e.Kind, 40))
		msg.Blocks = &slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, body, false, false), nil, nil)}}
	}
	hookURL := conn.WebhookURL
	if escalationKinds[e.Kind] && conn.EscalationWebhookURL != "" {
		hookURL = conn.EscalationWebhookURL
	}
	if err := slack.PostWebhookCustomHTTPContext(ctx, hookURL, s.cfg.HTTPClient, msg); err != nil {
		// slack-go's error may carry the URL, which is a secret: say only what failed.
		return fmt.Errorf("post Slack webhook message for incident %d: %w", v.IncidentID, redactURLError(err))
	}
	if _, err := s.pool.Exec(ctx, `UPDATE slack_posts SET ts = 'webhook', posted_at = now() WHERE event_id = $1 AND channel = ''`, e.ID); err != nil {
		return fmt.Errorf("record webhook post of entry %d: %w", e.ID, err)
	}
	if e.Kind == "opened" {
		if err := s.incidents.MarkNotified(ctx, v.IncidentID); err != nil {
			return err
		}
	}
	if err := s.incidents.MarkEntryNotified(ctx, e.ID); err != nil {
		return err
	}
	s.logger.Info("Slack webhook message sent", slog.Int64("incident_id", v.IncidentID), slog.String("kind", e.Kind))
	return nil
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
