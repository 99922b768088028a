package github

import (
	"encoding/json"
	"fmt"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/leakwatch/leakwatch/crawler"
)

// Documents returns the text a public event carries, as documents with
// provenance. known is false for event types that carry no text we scan
// (WatchEvent, ForkEvent, …) or that we do not recognise; those are counted
// by the caller and ignored.
func Documents(ev *gh.Event) (docs []crawler.Document, known bool, err error) {
	payload, err := ev.ParsePayload()
	if err != nil {
		return nil, false, fmt.Errorf("parse %s payload of event %s: %w", ev.GetType(), ev.GetID(), err)
	}
	base := crawler.Document{
		Source:    "github",
		EventID:   ev.GetID(),
		EventType: ev.GetType(),
		Repo:      ev.GetRepo().GetName(),
		Actor:     ev.GetActor().GetLogin(),
		EventAt:   ev.GetCreatedAt().Time,
	}
	add := func(url string, texts ...string) {
		for _, t := range texts {
			if t == "" {
				continue
			}
			d := base
			d.URL = url
			d.Text = []byte(t)
			docs = append(docs, d)
		}
	}
	switch p := payload.(type) {
	case *gh.IssuesEvent:
		add(p.GetIssue().GetHTMLURL(), p.GetIssue().GetTitle(), p.GetIssue().GetBody())
	case *gh.IssueCommentEvent:
		add(p.GetComment().GetHTMLURL(), p.GetComment().GetBody())
	case *gh.PullRequestEvent:
		add(p.GetPullRequest().GetHTMLURL(), p.GetPullRequest().GetTitle(), p.GetPullRequest().GetBody())
	case *gh.PullRequestReviewEvent:
		add(p.GetReview().GetHTMLURL(), p.GetReview().GetBody())
	case *gh.PullRequestReviewCommentEvent:
		add(p.GetComment().GetHTMLURL(), p.GetComment().GetBody(), p.GetComment().GetDiffHunk())
	case *gh.CommitCommentEvent:
		add(p.GetComment().GetHTMLURL(), p.GetComment().GetBody())
	case *gh.ReleaseEvent:
		add(p.GetRelease().GetHTMLURL(), p.GetRelease().GetName(), p.GetRelease().GetBody())
	case *gh.CreateEvent:
		add("https://github.com/"+base.Repo, p.GetDescription())
	case *gh.PushEvent:
		// Since 2025-10 the public stream carries no commits; older payloads
		// (and GitHub Enterprise) still do, and their messages are text.
		for _, c := range p.Commits {
			d := base
			d.Commit = c.GetSHA()
			d.URL = "https://github.com/" + base.Repo + "/commit/" + c.GetSHA()
			d.Text = []byte(c.GetMessage())
			if len(d.Text) > 0 {
				docs = append(docs, d)
			}
		}
	case *gh.GollumEvent, *gh.PublicEvent, *gh.DeleteEvent, *gh.ForkEvent, *gh.WatchEvent, *gh.MemberEvent:
		// Recognised; nothing to scan in the payload itself.
	default:
		return nil, false, nil
	}
	return docs, true, nil
}

// decodeEvent parses one raw event.
func decodeEvent(raw json.RawMessage) (*gh.Event, error) {
	var ev gh.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	if ev.GetID() == "" || ev.GetType() == "" {
		return nil, fmt.Errorf("decode event: missing id or type")
	}
	return &ev, nil
}

func eventTime(ev *gh.Event) time.Time { return ev.GetCreatedAt().Time }
