package github

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	gh "github.com/google/go-github/v60/github"
	"github.com/riverqueue/river"

	"github.com/leakwatch/leakwatch/crawler"
)

// eventWork is what an event asks for: text to scan now, and jobs that
// fetch what the event only points at.
type eventWork struct {
	docs  []crawler.Document
	jobs  []river.JobArgs
	known bool
	// unknownFields are payload fields the payload type does not declare
	// (GitHub adds fields; they are counted, then ignored).
	unknownFields []string
	// forkee is the repository a ForkEvent created: later pushes to it are
	// a fork's and wait behind others when budget is short.
	forkee string
}

// planEvent decides what to scan for one event.
func planEvent(ev *gh.Event) (eventWork, error) {
	var w eventWork
	payload, err := ev.ParsePayload()
	if err != nil {
		return w, fmt.Errorf("parse %s payload of event %s: %w", ev.GetType(), ev.GetID(), err)
	}
	base := crawler.Document{
		Source:    "github",
		EventID:   ev.GetID(),
		EventType: ev.GetType(),
		Repo:      ev.GetRepo().GetName(),
		Actor:     ev.GetActor().GetLogin(),
		EventAt:   ev.GetCreatedAt().Time,
		// Organisation feeds carry private repositories' events too.
		Private: ev.Public != nil && !ev.GetPublic(),
	}
	add := func(url string, texts ...string) {
		for _, t := range texts {
			if t == "" {
				continue
			}
			d := base
			d.URL = url
			d.Text = []byte(t)
			w.docs = append(w.docs, d)
		}
	}
	w.known = true
	w.unknownFields = unknownPayloadFields(ev, payload)
	switch p := payload.(type) {
	case *gh.IssuesEvent:
		base.Title = p.GetIssue().GetTitle()
		add(p.GetIssue().GetHTMLURL(), p.GetIssue().GetTitle(), p.GetIssue().GetBody())
	case *gh.IssueCommentEvent:
		base.Title = p.GetIssue().GetTitle()
		add(p.GetComment().GetHTMLURL(), p.GetComment().GetBody())
	case *gh.PullRequestEvent:
		base.Title = p.GetPullRequest().GetTitle()
		add(p.GetPullRequest().GetHTMLURL(), p.GetPullRequest().GetTitle(), p.GetPullRequest().GetBody())
	case *gh.PullRequestReviewEvent:
		base.Title = p.GetPullRequest().GetTitle()
		add(p.GetReview().GetHTMLURL(), p.GetReview().GetBody())
	case *gh.PullRequestReviewCommentEvent:
		base.Title = p.GetPullRequest().GetTitle()
		add(p.GetComment().GetHTMLURL(), p.GetComment().GetBody(), p.GetComment().GetDiffHunk())
	case *gh.CommitCommentEvent:
		add(p.GetComment().GetHTMLURL(), p.GetComment().GetBody())
	case *gh.ReleaseEvent:
		base.Title = p.GetRelease().GetName()
		add(p.GetRelease().GetHTMLURL(), p.GetRelease().GetName(), p.GetRelease().GetBody())
	case *gh.DiscussionEvent:
		base.Title = p.GetDiscussion().GetTitle()
		add(p.GetDiscussion().GetHTMLURL(), p.GetDiscussion().GetTitle(), p.GetDiscussion().GetBody())
	case *gh.CreateEvent:
		add("https://github.com/"+base.Repo, p.GetDescription())
		if p.GetRefType() == "repository" {
			w.jobs = append(w.jobs, TreeArgs{Repo: base.Repo, EventID: base.EventID, EventType: base.EventType, Actor: base.Actor, EventAt: base.EventAt})
		}
	case *gh.PublicEvent:
		w.jobs = append(w.jobs, TreeArgs{Repo: base.Repo, EventID: base.EventID, EventType: base.EventType, Actor: base.Actor, EventAt: base.EventAt})
	case *gh.GollumEvent:
		wa := WikiArgs{Repo: base.Repo, EventID: base.EventID, Actor: base.Actor, EventAt: base.EventAt}
		for _, pg := range p.Pages {
			if pg.GetAction() == "deleted" {
				continue
			}
			wa.Pages = append(wa.Pages, WikiPage{Name: pg.GetPageName(), SHA: pg.GetSHA(), HTMLURL: pg.GetHTMLURL()})
		}
		if len(wa.Pages) > 0 {
			w.jobs = append(w.jobs, wa)
		}
	case *gh.PushEvent:
		// Older payloads (and GitHub Enterprise) still list commits; their
		// messages are text. The pushed code itself is fetched by a job.
		for _, c := range p.Commits {
			d := base
			d.Commit = c.GetSHA()
			d.URL = "https://github.com/" + base.Repo + "/commit/" + c.GetSHA()
			d.Text = []byte(c.GetMessage())
			if len(d.Text) > 0 {
				w.docs = append(w.docs, d)
			}
		}
		if p.GetHead() != "" && p.GetHead() != zeroSHA && base.Repo != "" {
			// The public stream's payload has no repository; webhook-shaped
			// ones (GitHub Enterprise, archives) do.
			def := p.GetRepo().GetDefaultBranch()
			if def == "" {
				def = p.GetRepo().GetMasterBranch()
			}
			w.jobs = append(w.jobs, PushArgs{Repo: base.Repo, Before: p.GetBefore(), Head: p.GetHead(), Ref: p.GetRef(),
				EventID: base.EventID, Actor: base.Actor, EventAt: base.EventAt, DefaultBranch: def, Fork: p.GetRepo().GetFork()})
		}
	case *gh.ForkEvent:
		w.forkee = p.GetForkee().GetFullName()
	case *gh.DeleteEvent, *gh.WatchEvent, *gh.MemberEvent:
		// Recognised; nothing to scan.
	default:
		w.known = false
	}
	return w, nil
}

// payloadFields caches the JSON field names each payload type declares.
var payloadFields sync.Map // reflect.Type → map[string]bool

// unknownPayloadFields returns the top-level payload fields that the
// payload's go-github type does not declare.
func unknownPayloadFields(ev *gh.Event, payload any) []string {
	t := reflect.TypeOf(payload)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	known, ok := payloadFields.Load(t)
	if !ok {
		m := map[string]bool{}
		st := t.Elem()
		for i := range st.NumField() {
			name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				m[name] = true
			}
		}
		known, _ = payloadFields.LoadOrStore(t, m)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(ev.GetRawPayload(), &fields); err != nil {
		return nil
	}
	var out []string
	for k := range fields {
		if !known.(map[string]bool)[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// knownEventFields are the top-level fields of a public event.
var knownEventFields = map[string]bool{
	"id": true, "type": true, "actor": true, "repo": true, "payload": true, "public": true, "created_at": true, "org": true,
}

// decodeEvent parses one raw event and returns the names of top-level
// fields it does not know (counted, then ignored).
func decodeEvent(raw json.RawMessage) (*gh.Event, []string, error) {
	var ev gh.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, nil, fmt.Errorf("decode event: %w", err)
	}
	if ev.GetID() == "" || ev.GetType() == "" {
		return nil, nil, fmt.Errorf("decode event: missing id or type")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, nil, fmt.Errorf("decode event fields: %w", err)
	}
	var unknown []string
	for k := range fields {
		if !knownEventFields[k] {
			unknown = append(unknown, k)
		}
	}
	return &ev, unknown, nil
}
