package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/crawler/paste/pastetest"
)

// TestNoLeakedTextAtRest runs the real wiring over fakes with a registered
// secret planted in every GitHub event type that carries text (issue and
// pull-request titles included), in a pushed patch, a wiki page, a paste
// whose first fetch fails, and a gist (file, description and comment).
// Once every finding is recorded and the crawl jobs have ended, no table of
// the database may hold the secret in any form (plain, JSON, hex as bytea,
// base64), while the redacted previews are there; nor may the logs.
func TestNoLeakedTextAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := leakedKeyFixture(t, "deploy token")
	pool, secret := fx.Pool, fx.Secret
	leak := "GITHUB_TOKEN=" + secret
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	const repo = "octo-org/payments"

	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPollInterval(1)
	base, head := githubtest.SHA("base"), githubtest.SHA("head")
	gh.AddCommits(repo,
		githubtest.Commit{SHA: base, Message: "init", AuthorLogin: "alice", Date: at},
		githubtest.Commit{SHA: head, Parents: []string{base}, Message: "config", AuthorLogin: "alice", Date: at,
			Files: []githubtest.File{{Path: "deploy/.env", Patch: patchAddingLines(3, "APP=1", leak)}}})
	gh.SetBranch(repo, "main", head)
	gh.SetWikiPage(repo, "Deploy", []byte("# Deploy\n\n"+leak+"\n"))
	gh.Publish(
		githubtest.IssuesEvent(5001, repo, "mallory", "rotate "+secret+" please", "the token:\n"+leak, at),
		githubtest.CommentEvent(5002, repo, "mallory", "my config:\n"+leak, at),
		githubtest.PullRequestEvent(5003, repo, "mallory", "Add "+secret, "adds\n"+leak, at),
		githubtest.PullRequestReviewEvent(5004, repo, "bob", "remove this: "+leak, at),
		githubtest.ReviewCommentEvent(5005, repo, "bob", "this one: "+leak, "@@ -1 +1,2 @@\n+"+leak, at),
		githubtest.CommitCommentEvent(5006, repo, "bob", head, "leaked: "+leak, at),
		githubtest.ReleaseEvent(5007, repo, "alice", "v1 "+secret, "notes\n"+leak, at),
		githubtest.Event(5008, "DiscussionEvent", repo, "mallory", at, map[string]any{"action": "created",
			"discussion": map[string]any{"number": 3, "title": "CI token", "body": "here:\n" + leak,
				"html_url": "https://github.com/" + repo + "/discussions/3"}}),
		githubtest.PushEvent(5009, repo, "alice", "refs/heads/main", base, head, at),
		githubtest.GollumEvent(5010, repo, "alice", "Deploy", at),
	)
	site := pastetest.NewFeed(pastetest.FormatRSS)
	defer site.Close()
	site.FailRaw(1, 500) // the fetch job fails once, and River keeps its error
	site.Publish(pastetest.Paste{Key: "Hk3mZ", Title: "env " + secret, User: "mallory", Date: at, Text: "# env\n" + leak + "\n"})
	gists := pastetest.NewGists()
	defer gists.Close()
	gists.Publish(pastetest.Gist{ID: "aa5a315d61ae9438b18d", Owner: "mallory", Description: "ci " + secret, UpdatedAt: at,
		Files:    []pastetest.GistFile{{Name: "ci.sh", Content: "export " + leak + "\n"}},
		Comments: []pastetest.GistComment{{ID: 7001, User: "bob", Body: "you leaked " + leak}}})

	dir := t.TempDir()
	writeSources := func(name, conf string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	count := func(q string) int {
		var n int
		if err := pool.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		rows, _ := pool.Query(ctx, `SELECT source || ' ' || event_type || ' ' || url FROM occurrences`)
		found, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		rows, _ = pool.Query(ctx, `SELECT kind || ' ' || state || ' ' || attempt || ' ' || coalesce(errors::text, '') FROM river_job`)
		jobs, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		t.Logf("occurrences:\n%s\njobs:\n%s", strings.Join(found, "\n"), strings.Join(jobs, "\n"))
	})
	settled := func() bool {
		return count(`SELECT count(*) FROM river_job WHERE kind IN ('github_events', 'github_push', 'github_wiki', 'github_tree', 'paste_fetch')
			AND state NOT IN ('completed', 'cancelled', 'discarded')`) == 0
	}

	// GitHub and a paste site. Gists are read through the GitHub API URL,
	// so they get a second run against their own fake.
	svc := startService(t, map[string]string{
		"DATABASE_URL":                       fx.DBURL,
		"LEAKWATCH_GITHUB_API_URL":           gh.APIURL(),
		"LEAKWATCH_WEBHOOK_ALLOW_NETS":       "127.0.0.0/8",
		"LEAKWATCH_GITHUB_RAW_URL":           gh.RawURL(),
		"LEAKWATCH_GITHUB_TOKENS":            "t1",
		"LEAKWATCH_GITHUB_MIN_POLL_INTERVAL": "100ms",
		"LEAKWATCH_KEY_RELOAD_INTERVAL":      "1s",
		"LEAKWATCH_LOG_LEVEL":                "debug",
		"LEAKWATCH_PASTE_SOURCES_FILE": writeSources("feed.json", `{"sources":[{"type":"feed","name":"pastesite","format":"rss","url":"`+
			site.FeedURL()+`","raw_url_template":"`+site.URL+`/raw/{id}","interval":"1s"}]}`),
	})
	// 12 texts from events (issue, PR and release titles and a review
	// comment's diff hunk count apart), the push, the wiki page and the paste.
	eventually(t, "findings in GitHub and the paste", 60*time.Second, func() bool { return count(`SELECT count(*) FROM occurrences`) >= 15 && settled() })
	if n := count(`SELECT count(*) FROM river_job WHERE kind = 'paste_fetch' AND attempt = 2 AND errors IS NOT NULL`); n != 1 {
		t.Fatalf("%d paste fetches failed once; the test wants one", n)
	}
	svc.Stop(t)
	logs := svc.Logs.String()

	svc = startService(t, map[string]string{
		"DATABASE_URL":                 fx.DBURL,
		"LEAKWATCH_GITHUB_POLL":        "false",
		"LEAKWATCH_GITHUB_API_URL":     gists.APIURL(),
		"LEAKWATCH_WEBHOOK_ALLOW_NETS": "127.0.0.0/8",
		"LEAKWATCH_LOG_LEVEL":          "debug",
		"LEAKWATCH_PASTE_SOURCES_FILE": writeSources("gists.json", `{"sources":[{"type":"gist","interval":"1s"}]}`),
	})
	eventually(t, "findings in the gist", 60*time.Second, func() bool {
		return count(`SELECT count(*) FROM occurrences WHERE source = 'gist'`) >= 2 && settled()
	})
	svc.Stop(t)
	logs += svc.Logs.String()

	if n := count(`SELECT count(*) FROM github_event_batches`); n != 0 {
		t.Fatalf("%d event batches left after their jobs ended", n)
	}
	if n, redacted := count(`SELECT count(*) FROM occurrences`), count(`SELECT count(*) FROM occurrences WHERE preview LIKE '%********%'`); n < 17 || redacted != n {
		t.Fatalf("%d of %d occurrences have a redacted preview, want all of at least 17", redacted, n)
	}
	forms := secretForms(secret)
	for name, text := range allTables(t, pool) {
		for form, v := range forms {
			if strings.Contains(text, v) {
				i := strings.Index(text, v)
				t.Errorf("table %s holds the secret (%s): …%s…", name, form, text[max(0, i-80):i])
			}
		}
	}
	for form, v := range forms {
		if strings.Contains(logs, v) {
			t.Errorf("logs hold the secret (%s)", form)
		}
	}
}

// secretForms are the ways a secret could be stored: as is (JSON escapes
// nothing in a token), without its public prefix, hex (bytea's text form)
// and base64 at each alignment, edges cut.
func secretForms(secret string) map[string]string {
	forms := map[string]string{"plain": secret, "body": secret[4:], "hex": hex.EncodeToString([]byte(secret[4:]))}
	for i := range 3 {
		b := base64.StdEncoding.EncodeToString([]byte(secret[i:]))
		forms["base64+"+string(rune('0'+i))] = b[:len(b)-4]
	}
	return forms
}

// allTables returns the text of every row of every table in the database,
// by schema-qualified table name.
func allTables(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 20 {
		t.Fatalf("only %d tables found: %v", len(names), names)
	}
	out := map[string]string{}
	for _, name := range names {
		var text string
		if err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+name+` t`).Scan(&text); err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		out[name] = text
	}
	return out
}

// patchAddingLines is a unified-diff hunk adding lines at line start.
func patchAddingLines(start int, lines ...string) string {
	var b strings.Builder
	b.WriteString("@@ -" + strconv.Itoa(start) + ",1 +" + strconv.Itoa(start) + "," + strconv.Itoa(len(lines)+1) + " @@\n context line")
	for _, l := range lines {
		b.WriteString("\n+" + l)
	}
	return b.String()
}
