package slack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// view is what the living message shows of an incident.
type view struct {
	IncidentID  int64
	OrgID       int64
	OrgName     string
	KeyName     string
	Provider    string
	Environment string
	Severity    string
	Phase       string
	Assignee    string // email, "" when unassigned
	// AssigneeSlackID is the assignee's Slack user (users.lookupByEmail),
	// mentioned in the alert; "" when unknown.
	AssigneeSlackID string
	AckBy           string
	Source          string
	URL             string
	Repo            string
	Path            string
	Line            int
	Actor           string
	Preview         string
	EventAt         *time.Time
	DetectedAt      time.Time
	Occurrences     int
}

// loadView reads the incident through its owner, and its assignee's
// email through auth.
func (s *Service) loadView(ctx context.Context, incidentID int64) (view, error) {
	a, err := s.incidents.AlertView(ctx, incidentID)
	if err != nil {
		return view{}, err
	}
	v := view{IncidentID: a.IncidentID, OrgID: a.OrgID, OrgName: a.OrgName, KeyName: a.KeyName, Provider: a.Provider,
		Environment: a.Environment, Severity: a.Severity, Phase: a.Phase, AckBy: a.AckBy,
		Source: a.Source, URL: a.URL, Repo: a.Repo, Path: a.Path, Line: a.Line, Actor: a.Actor, Preview: a.Preview,
		EventAt: a.EventAt, DetectedAt: a.DetectedAt, Occurrences: a.Occurrences}
	if a.AssigneeID != nil {
		u, err := s.members.UserByID(ctx, *a.AssigneeID)
		switch {
		case errors.Is(err, auth.ErrNotFound):
		case err != nil:
			return v, err
		default:
			v.Assignee = u.Email
		}
	}
	return v, nil
}

func (v view) open() bool {
	return v.Phase != "closed" && v.Phase != "false_positive" && v.Phase != "accepted_risk"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// where is the leak's location as mrkdwn: a link to the exact line when the
// source gave one.
func (v view) where() string {
	w := Escape(v.Repo, 0)
	if v.Path != "" {
		if w != "" {
			w += " "
		}
		w += Escape(v.Path, 0)
		if v.Line > 0 {
			w += fmt.Sprintf(":%d", v.Line)
		}
	}
	if w == "" {
		w = Escape(orDash(v.Source), 0)
	}
	if u := linkURL(v.URL); u != "" {
		return "<" + u + "|" + w + ">"
	}
	return w
}

func (v view) openURL(baseURL string) string {
	if baseURL == "" {
		return ""
	}
	return linkURL(fmt.Sprintf("%s/incidents#incident-%d", baseURL, v.IncidentID))
}

// slackUserID is the form of the user ids Slack returns; only those are
// ever put in a mention.
var slackUserID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`) })

// Action ids of the alert's buttons.
const (
	ActionAcknowledge   = "lw_ack"
	ActionRevoke        = "lw_revoke"
	ActionAssignMe      = "lw_assign_me"
	ActionFalsePositive = "lw_false_positive"
	ActionOpen          = "lw_open"
)

var phaseEmoji = map[string]string{
	"identified": ":rotating_light:", "contained": ":lock:", "eradicated": ":recycle:", "recovered": ":white_check_mark:",
	"closed": ":heavy_check_mark:", "false_positive": ":grey_question:", "accepted_risk": ":warning:",
}

// alertBlocks builds the living message. mention ("here", "channel" or "")
// is Leakwatch's own broadcast; attacker text can never produce one.
// interactive adds the buttons (bot connections only).
func alertBlocks(v view, baseURL, mention string, interactive bool) (string, []slack.Block) {
	fallback := fmt.Sprintf("Leaked key %s (%s): incident %d, %s, %s", plain(v.KeyName, 100), plain(orDash(v.Provider), 40),
		v.IncidentID, v.Severity, v.Phase)
	head := slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType,
		plain(fmt.Sprintf("Leaked key: %s", v.KeyName), 150), true, false))
	var lines []string
	if mention == "here" || mention == "channel" {
		lines = append(lines, "<!"+mention+">")
	}
	lines = append(lines, fmt.Sprintf("%s *%s* · severity *%s* · %s", phaseEmoji[v.Phase], strings.ReplaceAll(v.Phase, "_", " "),
		v.Severity, Escape(v.OrgName, 100)))
	lines = append(lines, "Found in "+v.where())
	summary := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Join(lines, "\n"), false, false), nil, nil)

	pushed := "-"
	if v.EventAt != nil {
		pushed = fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", v.EventAt.Unix(), v.EventAt.UTC().Format(time.RFC3339))
	}
	assignee := "_unassigned_"
	if v.Assignee != "" {
		assignee = Escape(v.Assignee, 100)
		if slackUserID().MatchString(v.AssigneeSlackID) {
			assignee = "<@" + v.AssigneeSlackID + "> (" + assignee + ")"
		}
	}
	field := func(label, value string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, "*"+label+"*\n"+value, false, false)
	}
	fields := []*slack.TextBlockObject{
		field("Key", Escape(v.KeyName, 100)),
		field("Provider", Escape(orDash(v.Provider), 60)),
		field("Environment", Escape(orDash(v.Environment), 40)),
		field("Repository", Escape(orDash(v.Repo), 0)),
		field("Actor", Escape(orDash(v.Actor), 100)),
		field("Assignee", assignee),
		field("Pushed", pushed),
		field("Detected", fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", v.DetectedAt.Unix(), v.DetectedAt.UTC().Format(time.RFC3339))),
	}
	details := slack.NewSectionBlock(nil, fields, nil)
	ctxParts := []slack.MixedElement{}
	if v.Preview != "" {
		ctxParts = append(ctxParts, slack.NewTextBlockObject(slack.MarkdownType, "Preview: `"+escapeCode(v.Preview)+"`", false, false))
	}
	ack := "Not acknowledged"
	if v.AckBy != "" {
		ack = "Acknowledged by " + Escape(v.AckBy, 100)
	}
	ctxParts = append(ctxParts, slack.NewTextBlockObject(slack.MarkdownType,
		fmt.Sprintf("Incident %d · %s · %d sighting(s)", v.IncidentID, ack, v.Occurrences), false, false))
	blocks := []slack.Block{head, summary, details, slack.NewContextBlock("", ctxParts...)}

	var buttons []slack.BlockElement
	id := fmt.Sprint(v.IncidentID)
	if interactive && v.open() {
		if v.AckBy == "" {
			buttons = append(buttons, slack.NewButtonBlockElement(ActionAcknowledge, id,
				slack.NewTextBlockObject(slack.PlainTextType, "Acknowledge", false, false)).WithStyle(slack.StylePrimary))
		}
		if v.Phase == "identified" {
			buttons = append(buttons, slack.NewButtonBlockElement(ActionRevoke, id,
				slack.NewTextBlockObject(slack.PlainTextType, "Revoke now", false, false)).WithStyle(slack.StyleDanger).
				WithConfirm(slack.NewConfirmationBlockObject(
					slack.NewTextBlockObject(slack.PlainTextType, "Revoke this key?", false, false),
					slack.NewTextBlockObject(slack.PlainTextType, "Leakwatch asks the key's revocation endpoint to revoke it now.", false, false),
					slack.NewTextBlockObject(slack.PlainTextType, "Revoke", false, false),
					slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false))))
		}
		buttons = append(buttons,
			slack.NewButtonBlockElement(ActionAssignMe, id, slack.NewTextBlockObject(slack.PlainTextType, "Assign to me", false, false)),
			slack.NewButtonBlockElement(ActionFalsePositive, id, slack.NewTextBlockObject(slack.PlainTextType, "False positive", false, false)))
	}
	if u := v.openURL(baseURLOf(baseURL)); u != "" {
		buttons = append(buttons, slack.NewButtonBlockElement(ActionOpen, id,
			slack.NewTextBlockObject(slack.PlainTextType, "Open in Leakwatch", false, false)).WithURL(u))
	}
	if len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock(fmt.Sprintf("lw_incident_%d", v.IncidentID), buttons...))
	}
	return fallback, blocks
}

func baseURLOf(s string) string { return strings.TrimRight(s, "/") }

// event is one timeline entry.
type event struct {
	ID       int64
	Kind     string
	Actor    string
	From, To string
	Details  map[string]any
	At       time.Time
}

// loadEvent reads the timeline entry through its owner.
func loadEvent(ctx context.Context, inc Incidents, incidentID, eventID int64) (event, error) {
	e, err := inc.TimelineEntry(ctx, incidentID, eventID)
	if err != nil {
		return event{}, err
	}
	return event{ID: e.ID, Kind: e.Kind, Actor: e.Actor, From: e.FromPhase, To: e.ToPhase, Details: e.Details, At: e.At}, nil
}

// escalationKinds are also cross-posted to the escalation channel.
var escalationKinds = map[string]bool{"escalated": true, "containment_failed": true}

// webhookKinds are the entries an incoming webhook (no threads) posts, as
// separate messages.
var webhookKinds = map[string]bool{"regression": true, "escalated": true, "containment_failed": true,
	"containment_manual": true, "reminder": true, "severity_raised": true}

var eventHeads = map[string]string{
	"opened":              ":rotating_light: Incident opened",
	"regression":          ":rotating_light: Regression: the key was found again",
	"escalated":           ":sos: Escalation: nobody acknowledged the incident within its SLA",
	"containment_failed":  ":x: Containment failed: revoke the key by hand",
	"containment_manual":  ":raised_hand: The revocation endpoint asked for a human: revoke the key by hand",
	"reminder":            ":hourglass: Reminder: the incident is still waiting",
	"acknowledged":        ":eyes: Acknowledged",
	"assigned":            ":bust_in_silhouette: Assigned",
	"note":                ":memo: Note",
	"revoke_requested":    ":outbox_tray: Revocation requested",
	"revoked":             ":lock: Revoked",
	"rotated":             ":recycle: Key rotated",
	"marked_contained":    ":lock: Marked contained",
	"seen_after_rotation": ":ghost: The old secret was seen again (already rotated)",
	"closed":              ":heavy_check_mark: Closed",
	"reopened":            ":arrows_counterclockwise: Reopened",
	"severity_raised":     ":arrow_up: Severity raised: the key was seen somewhere more exposed",
}

// eventText is the threaded reply (or webhook post) for one entry.
func eventText(v view, e event) string {
	head, ok := eventHeads[e.Kind]
	if !ok {
		head = ":small_blue_diamond: " + Escape(strings.ReplaceAll(e.Kind, "_", " "), 60)
	}
	line := head
	if e.Actor != "" && e.Actor != "system" {
		line += " by " + Escape(e.Actor, 100)
	}
	if e.From != "" && e.To != "" && e.From != e.To {
		line += fmt.Sprintf(" · %s → *%s*", Escape(e.From, 30), Escape(e.To, 30))
	} else if e.To != "" && e.Kind == "transition" {
		line += " · *" + Escape(e.To, 30) + "*"
	}
	lines := []string{line}
	if e.Kind == "severity_raised" {
		from, _ := e.Details["from"].(string)
		to, _ := e.Details["to"].(string)
		lines = append(lines, "> severity: "+Escape(from, 20)+" → *"+Escape(to, 20)+"*")
	}
	for _, k := range sortedKeys(e.Details) {
		switch k {
		case "reason", "note", "by", "root_cause", "leak_vector", "follow_ups":
			if s, ok := e.Details[k].(string); ok && s != "" {
				lines = append(lines, "> "+strings.ReplaceAll(k, "_", " ")+": "+Escape(s, 500))
			}
		case "url":
			if s, ok := e.Details[k].(string); ok {
				if u := linkURL(s); u != "" {
					lines = append(lines, "> where: <"+u+"|"+Escape(s, 120)+">")
				}
			}
		}
	}
	return strings.Join(lines, "\n")
}

// webhookText is what an incoming webhook posts for an entry other than the
// opening: the entry with enough context to stand alone.
func webhookText(v view, e event, baseURL string) string {
	s := eventText(v, e) + fmt.Sprintf("\nKey *%s* (%s) of %s · severity %s · phase %s", Escape(v.KeyName, 100),
		Escape(orDash(v.Provider), 60), Escape(v.OrgName, 100), v.Severity, v.Phase)
	if u := v.openURL(baseURLOf(baseURL)); u != "" {
		s += "\n<" + u + "|Open in Leakwatch>"
	}
	return s
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
