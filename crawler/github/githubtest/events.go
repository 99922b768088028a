package githubtest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Event returns a real-format public event of type typ with payload.
func Event(id int64, typ, repo, actor string, at time.Time, payload map[string]any) json.RawMessage {
	ev := map[string]any{
		"id":   strconv.FormatInt(id, 10),
		"type": typ,
		"actor": map[string]any{
			"id": 1000 + id%1000, "login": actor, "display_login": actor, "gravatar_id": "",
			"url": "https://api.github.com/users/" + actor, "avatar_url": "https://avatars.githubusercontent.com/u/1?",
		},
		"repo":       map[string]any{"id": 4242, "name": repo, "url": "https://api.github.com/repos/" + repo},
		"payload":    payload,
		"public":     true,
		"created_at": at.UTC().Format(time.RFC3339),
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return raw
}

// CommentEvent returns a real-format IssueCommentEvent whose comment body is
// body, for planting text in a timeline.
func CommentEvent(id int64, repo, actor, body string, at time.Time) json.RawMessage {
	return Event(id, "IssueCommentEvent", repo, actor, at, map[string]any{
		"action": "created",
		"issue": map[string]any{
			"number": 7, "title": "Build fails", "state": "open",
			"html_url": "https://github.com/" + repo + "/issues/7",
		},
		"comment": map[string]any{
			"id": id, "body": body,
			"html_url": fmt.Sprintf("https://github.com/%s/issues/7#issuecomment-%d", repo, id),
			"user":     map[string]any{"login": actor},
		},
	})
}

// PushEvent returns a PushEvent as the public stream has sent since
// 2025-10-07: SHAs only, no commits.
func PushEvent(id int64, repo, actor, ref, before, head string, at time.Time) json.RawMessage {
	return Event(id, "PushEvent", repo, actor, at, map[string]any{
		"repository_id": 4242, "push_id": id * 10, "ref": ref, "head": head, "before": before,
	})
}

// IssuesEvent returns an opened issue with title and body.
func IssuesEvent(id int64, repo, actor, title, body string, at time.Time) json.RawMessage {
	return Event(id, "IssuesEvent", repo, actor, at, map[string]any{
		"action": "opened",
		"issue": map[string]any{"number": 9, "title": title, "body": body, "state": "open",
			"html_url": "https://github.com/" + repo + "/issues/9", "user": map[string]any{"login": actor}},
	})
}

// PullRequestEvent returns an opened pull request with title and body.
func PullRequestEvent(id int64, repo, actor, title, body string, at time.Time) json.RawMessage {
	return Event(id, "PullRequestEvent", repo, actor, at, map[string]any{
		"action": "opened", "number": 12,
		"pull_request": map[string]any{"number": 12, "title": title, "body": body, "state": "open",
			"html_url": "https://github.com/" + repo + "/pull/12", "user": map[string]any{"login": actor}},
	})
}

// PullRequestReviewEvent returns a submitted review with body.
func PullRequestReviewEvent(id int64, repo, actor, body string, at time.Time) json.RawMessage {
	return Event(id, "PullRequestReviewEvent", repo, actor, at, map[string]any{
		"action": "created",
		"review": map[string]any{"id": id, "body": body, "state": "commented",
			"html_url": fmt.Sprintf("https://github.com/%s/pull/12#pullrequestreview-%d", repo, id)},
		"pull_request": map[string]any{"number": 12, "html_url": "https://github.com/" + repo + "/pull/12"},
	})
}

// ReviewCommentEvent returns a pull request review comment with body and hunk.
func ReviewCommentEvent(id int64, repo, actor, body, hunk string, at time.Time) json.RawMessage {
	return Event(id, "PullRequestReviewCommentEvent", repo, actor, at, map[string]any{
		"action": "created",
		"comment": map[string]any{"id": id, "body": body, "diff_hunk": hunk, "path": "config.yml",
			"html_url": fmt.Sprintf("https://github.com/%s/pull/12#discussion_r%d", repo, id)},
		"pull_request": map[string]any{"number": 12, "html_url": "https://github.com/" + repo + "/pull/12"},
	})
}

// CommitCommentEvent returns a comment on a commit.
func CommitCommentEvent(id int64, repo, actor, sha, body string, at time.Time) json.RawMessage {
	return Event(id, "CommitCommentEvent", repo, actor, at, map[string]any{
		"comment": map[string]any{"id": id, "body": body, "commit_id": sha,
			"html_url": fmt.Sprintf("https://github.com/%s/commit/%s#commitcomment-%d", repo, sha, id)},
	})
}

// ReleaseEvent returns a published release with name and body.
func ReleaseEvent(id int64, repo, actor, name, body string, at time.Time) json.RawMessage {
	return Event(id, "ReleaseEvent", repo, actor, at, map[string]any{
		"action": "published",
		"release": map[string]any{"id": id, "tag_name": "v1.0.0", "name": name, "body": body,
			"html_url": "https://github.com/" + repo + "/releases/tag/v1.0.0"},
	})
}

// GollumEvent returns a wiki edit of one page.
func GollumEvent(id int64, repo, actor, page string, at time.Time) json.RawMessage {
	return Event(id, "GollumEvent", repo, actor, at, map[string]any{
		"pages": []map[string]any{{"page_name": page, "title": page, "action": "edited", "sha": SHA(page),
			"html_url": "https://github.com/" + repo + "/wiki/" + page}},
	})
}

// PublicEvent returns a repository being made public (empty payload).
func PublicEvent(id int64, repo, actor string, at time.Time) json.RawMessage {
	return Event(id, "PublicEvent", repo, actor, at, map[string]any{})
}
