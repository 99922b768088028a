package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/slack-go/slack"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

// ErrBadSignature is returned for an interactivity request whose Slack
// signature is missing, wrong or outside the 5-minute window.
var ErrBadSignature = errors.New("invalid Slack request signature")

// actionNames maps button action ids to audited action names.
var actionNames = map[string]string{
	ActionAcknowledge:   "acknowledge",
	ActionRevoke:        "revoke",
	ActionAssignMe:      "assign",
	ActionFalsePositive: "false_positive",
}

// ActionArgs is one button click, worked off the request path.
type ActionArgs struct {
	OrgID       int64  `json:"org_id" river:"unique"`
	IncidentID  int64  `json:"incident_id" river:"unique"`
	Action      string `json:"action" river:"unique"`
	SlackUserID string `json:"slack_user_id" river:"unique"`
	ActionTS    string `json:"action_ts" river:"unique"` // Slack's retries of one click carry the same
	Channel     string `json:"channel"`
}

// Kind implements river.JobArgs.
func (ActionArgs) Kind() string { return "slack_action" }

// InsertOpts runs clicks on the notify queue, once per click.
func (ActionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueNotify, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// HandleInteraction checks a request to the interactivity endpoint of an
// organisation (header and raw body as received) and queues its clicks. It
// does no Slack call and no incident work, so Slack gets its answer at once.
func (s *Service) HandleInteraction(ctx context.Context, orgID int64, header http.Header, body []byte) error {
	conn, err := s.store.Connection(ctx, orgID)
	if errors.Is(err, ErrNotConnected) || (err == nil && (conn.Mode != ModeBot || conn.SigningSecret == "")) {
		return ErrBadSignature // nothing to verify against: indistinguishable from a forgery
	}
	if err != nil {
		return err
	}
	sv, err := slack.NewSecretsVerifier(header, conn.SigningSecret)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if _, err := sv.Write(body); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := sv.Ensure(); err != nil {
		return ErrBadSignature
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fmt.Errorf("%w: malformed body", ErrInvalid)
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		return fmt.Errorf("%w: malformed payload", ErrInvalid)
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		return nil
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if _, ok := actionNames[a.ActionID]; !ok {
			continue // "Open in Leakwatch" is a link; Slack reports its click too
		}
		id, err := strconv.ParseInt(a.Value, 10, 64)
		if err != nil {
			continue
		}
		args := ActionArgs{OrgID: orgID, IncidentID: id, Action: a.ActionID, SlackUserID: cb.User.ID,
			ActionTS: a.ActionTs, Channel: cb.Channel.ID}
		if _, err := s.river.Insert(ctx, args, nil); err != nil {
			return fmt.Errorf("queue Slack action: %w", err)
		}
		s.logger.Info("Slack click queued", slog.Int64("org_id", orgID), slog.Int64("incident_id", id), slog.String("action", a.ActionID))
	}
	s.logger.Debug("Slack interaction handled", slog.Int64("org_id", orgID), slog.String("type", string(cb.Type)), slog.Int("actions", len(cb.ActionCallback.BlockActions)))
	return nil
}

// TestArgs sends one test message, asked for by an admin.
type TestArgs struct {
	OrgID       int64  `json:"org_id"`
	RequestedBy string `json:"requested_by"`
}

// Kind implements river.JobArgs.
func (TestArgs) Kind() string { return "slack_test" }

// InsertOpts puts the test on the notify queue, tried once.
func (TestArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueNotify, MaxAttempts: 1}
}

// QueueTest queues a test message for the organisation's Slack. The caller
// learns only that it was queued: answering with Slack's outcome would let
// anyone who can set the webhook URL probe which internal addresses answer
// (an SSRF oracle). Bot-mode failures show as a broken connection (GET
// /integrations/slack), which says only Slack's own error code. The job and
// the slack.test entry by a are inserted in one transaction.
func (s *Service) QueueTest(ctx context.Context, a audit.Actor, orgID int64) error {
	conn, err := s.store.Connection(ctx, orgID)
	if err != nil {
		return err
	}
	if conn.Mode == ModeNone {
		return ErrNotConnected
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.river.InsertTx(ctx, tx, TestArgs{OrgID: orgID, RequestedBy: a.Name}, nil); err != nil {
			return err
		}
		return audit.Record(ctx, tx, a.Entry(orgID, "slack.test", "org", orgID, nil))
	})
	if err != nil {
		return fmt.Errorf("queue Slack test message of org %d: %w", orgID, err)
	}
	return nil
}

// testWorker works TestArgs.
type testWorker struct {
	river.WorkerDefaults[TestArgs]
	s *Service
}

// Timeout bounds one test message.
func (w *testWorker) Timeout(*river.Job[TestArgs]) time.Duration { return 30 * time.Second }

// Work sends the message once. A failure is logged with the org's id only
// and not retried: a test that failed is worth a new click, not a retry
// storm against whatever the URL names.
func (w *testWorker) Work(ctx context.Context, job *river.Job[TestArgs]) error {
	err := w.s.SendTest(ctx, job.Args.OrgID, job.Args.RequestedBy)
	if errors.Is(err, ErrNotConnected) {
		return nil
	}
	if err != nil {
		w.s.logger.Warn("Slack test message failed", slog.Int64("org_id", job.Args.OrgID))
		return nil
	}
	w.s.logger.Info("Slack test message sent", slog.Int64("org_id", job.Args.OrgID))
	return nil
}

// actionWorker performs clicks.
type actionWorker struct {
	river.WorkerDefaults[ActionArgs]
	s *Service
}

// Timeout bounds one click.
func (w *actionWorker) Timeout(*river.Job[ActionArgs]) time.Duration { return time.Minute }

func (w *actionWorker) Work(ctx context.Context, job *river.Job[ActionArgs]) error {
	s := w.s
	a := job.Args
	conn, err := s.store.Connection(ctx, a.OrgID)
	if err != nil {
		return err
	}
	if conn.Mode != ModeBot || conn.BrokenAt != nil {
		return river.JobCancel(fmt.Errorf("org %d: %w", a.OrgID, ErrNotConnected))
	}
	api := s.api(conn.BotToken)
	tell := func(text string) error {
		if a.Channel == "" {
			return nil
		}
		_, err := api.PostEphemeralContext(ctx, a.Channel, a.SlackUserID, slack.MsgOptionText(text, false))
		return s.jobError(ctx, conn, err)
	}
	email := ""
	u, err := api.GetUserInfoContext(ctx, a.SlackUserID)
	switch {
	case slackCode(err) == "user_not_found" || slackCode(err) == "user_not_visible":
		// Treated like a user without a membership: told, not retried.
	case err != nil:
		return s.jobError(ctx, conn, fmt.Errorf("look up Slack user: %w", err))
	default:
		email = u.Profile.Email
	}
	m, err := s.memberByEmail(ctx, a.OrgID, email)
	if errors.Is(err, pgx.ErrNoRows) {
		s.logger.Info("Slack action by a non-member refused", slog.Int64("org_id", a.OrgID), slog.Int64("incident_id", a.IncidentID))
		return tell("Sorry, your Slack account's email is not a member of this Leakwatch organisation, so you cannot act on incidents from Slack. Ask an admin to invite you.")
	}
	if err != nil {
		return err
	}
	name := actionNames[a.Action]
	if !m.role.AtLeast(auth.RoleResponder) {
		return tell(fmt.Sprintf("Sorry, your Leakwatch role (%s) can view incidents but not act on them.", m.role))
	}
	// The audit entry is written in the action's transaction: a retried
	// job never repeats an action whose audit write failed.
	actor := incidents.Actor{Name: m.email, UserID: m.userID, OrgID: a.OrgID, UserAgent: "Slack",
		Details: map[string]any{"via": "slack", "slack_user_id": a.SlackUserID}}
	switch a.Action {
	case ActionAcknowledge:
		err = s.incidents.Acknowledge(ctx, a.IncidentID, actor)
	case ActionRevoke:
		err = s.incidents.RevokeNow(ctx, a.IncidentID, actor)
	case ActionAssignMe:
		err = s.incidents.Assign(ctx, a.IncidentID, m.userID, actor)
	case ActionFalsePositive:
		err = s.incidents.MarkFalsePositive(ctx, a.IncidentID, actor, "marked as a false positive from Slack by "+m.email)
	default:
		return river.JobCancel(fmt.Errorf("unknown Slack action %q", a.Action))
	}
	switch {
	case errors.Is(err, incidents.ErrNotFound):
		return tell("That incident no longer exists in this organisation.")
	case errors.Is(err, incidents.ErrInvalidTransition):
		return tell("That action does not apply to the incident in its current phase.")
	case errors.Is(err, incidents.ErrNoEndpoint):
		return tell("This key has no revocation endpoint: revoke it at its provider, then mark the incident contained in Leakwatch.")
	case err != nil:
		return err
	}
	s.logger.Info("Slack action performed", slog.String("action", name), slog.Int64("incident_id", a.IncidentID), slog.Int64("user_id", m.userID))
	return nil
}

// Incidents is what Slack asks of the incidents package (incidents.Service):
// the buttons' actions, each writing the actor's audit entry in its
// transaction, and the sync's reads and records.
type Incidents interface {
	Acknowledge(ctx context.Context, id int64, a incidents.Actor) error
	RevokeNow(ctx context.Context, id int64, a incidents.Actor) error
	Assign(ctx context.Context, id, userID int64, a incidents.Actor) error
	MarkFalsePositive(ctx context.Context, id int64, a incidents.Actor, reason string) error

	// What the sync reads and records of the incident it posts.
	AlertView(ctx context.Context, incidentID int64) (incidents.AlertView, error)
	TimelineEntry(ctx context.Context, incidentID, eventID int64) (incidents.Event, error)
	MarkNotified(ctx context.Context, incidentID int64) error
	MarkEntryNotified(ctx context.Context, eventID int64) error

	// What the weekly digest reports.
	PeriodFigures(ctx context.Context, orgID int64, from, to time.Time) (incidents.PeriodFigures, error)
	IdentifiedBetween(ctx context.Context, orgID int64, from, to time.Time) ([]incidents.KeySeverity, error)
}

type member struct {
	userID int64
	email  string
	role   auth.Role
}

// memberByEmail finds the organisation's member with the Slack user's
// email; pgx.ErrNoRows if there is none.
func (s *Service) memberByEmail(ctx context.Context, orgID int64, email string) (member, error) {
	if email == "" {
		return member{}, pgx.ErrNoRows
	}
	ms, err := s.members.MemberByEmail(ctx, orgID, email)
	if errors.Is(err, auth.ErrNotFound) {
		return member{}, pgx.ErrNoRows
	}
	if err != nil {
		return member{}, err
	}
	return member{userID: ms.UserID, email: ms.Email, role: ms.Role}, nil
}

// SendTest posts a test message to the organisation's Slack (the default
// channel, or the incoming webhook), so an admin can check the connection.
// A refused token marks the connection broken and is returned.
func (s *Service) SendTest(ctx context.Context, orgID int64, requestedBy string) error {
	conn, err := s.store.Connection(ctx, orgID)
	if err != nil {
		return err
	}
	text := ":white_check_mark: Leakwatch test message, requested by " + Escape(requestedBy, 100) +
		". Incident alerts for this organisation will arrive here."
	switch conn.Mode {
	case ModeBot:
		_, _, err := s.api(conn.BotToken).PostMessageContext(ctx, conn.DefaultChannel, slack.MsgOptionText(text, false))
		if err != nil {
			if code := slackCode(err); brokenCodes[code] {
				if mErr := s.store.MarkBroken(ctx, orgID, code); mErr != nil {
					return mErr
				}
			}
			return fmt.Errorf("post Slack test message: %w", err)
		}
		return nil
	case ModeWebhook:
		if err := slack.PostWebhookCustomHTTPContext(ctx, conn.WebhookURL, s.cfg.HTTPClient, &slack.WebhookMessage{Text: text}); err != nil {
			return fmt.Errorf("post Slack test message: %w", redactURLError(err))
		}
		return nil
	default:
		return ErrNotConnected
	}
}
