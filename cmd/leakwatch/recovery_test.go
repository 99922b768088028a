package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/crawler/paste/pastetest"
)

// TestKilledWhileFetchingRecoversWithinTwoMinutes kills the real binary with
// SIGKILL while a paste fetch is held open by a stalled site, starts it
// again, and measures how long the dead process's job takes to run again
// and record its finding. The rescue window is shortened to keep the test
// short (River's rescuer still runs only every 30 s and the dead leader's
// lease must expire, which is what dominates the bound); the default's bound
// is checked by TestRecoveryBound in internal/platform/jobs. Both sources must
// resume: the paste site's listing and the GitHub feed.
func TestKilledWhileFetchingRecoversWithinTwoMinutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	fx := leakedKeyFixture(t, "ci token")
	pool, secret := fx.Pool, fx.Secret

	site := pastetest.NewFeed(pastetest.FormatRSS)
	defer site.Close()
	release := site.Hold()
	defer release()
	site.Publish(pastetest.Paste{Key: "Zq81x", Title: "env", User: "mallory", Date: time.Now().Add(-time.Minute).UTC(),
		Text: "APP=prod\nGITHUB_TOKEN=" + secret + "\n"})
	sources := filepath.Join(dir, "paste-sources.json")
	conf := `{"sources":[{"type":"feed","name":"pastesite","format":"rss","url":"` + site.FeedURL() +
		`","raw_url_template":"` + site.URL + `/raw/{id}","interval":"1s"}]}`
	if err := os.WriteFile(sources, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPollInterval(1)

	env := append(os.Environ(),
		"DATABASE_URL="+fx.DBURL,
		"LEAKWATCH_HTTP_ADDR=127.0.0.1:0",
		"LEAKWATCH_GITHUB_API_URL="+gh.APIURL(),
		"LEAKWATCH_WEBHOOK_ALLOW_NETS=127.0.0.0/8",
		"LEAKWATCH_GITHUB_TOKENS=t1",
		"LEAKWATCH_GITHUB_MIN_POLL_INTERVAL=100ms",
		"LEAKWATCH_PASTE_SOURCES_FILE="+sources,
		"LEAKWATCH_KEY_RELOAD_INTERVAL=1s",
		"LEAKWATCH_JOB_TIMEOUT=3s",
		"LEAKWATCH_GITHUB_PUSH_TIMEOUT=3s",
		"LEAKWATCH_JOB_RESCUE_AFTER=4s",
		"LEAKWATCH_LOG_FORMAT=json",
	)
	logs := &syncBuffer{}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve")
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	count := func(q string, args ...any) int {
		var n int
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	first := start()
	eventually(t, "the paste fetch to hang", 60*time.Second, func() bool { return site.Holding() > 0 })
	eventually(t, "the fetch job marked running", 10*time.Second, func() bool {
		return count(`SELECT count(*) FROM river_job WHERE kind = 'paste_fetch' AND state = 'running'`) == 1
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait() //nolint:errcheck
	killedAt := time.Now()
	release() // the site answers again
	if n := count(`SELECT count(*) FROM occurrences`); n != 0 {
		t.Fatalf("%d occurrences before the kill; the fetch was meant to hang", n)
	}

	second := start()
	defer func() {
		second.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		second.Wait()                          //nolint:errcheck
	}()
	// A new event on GitHub shows that the poller resumed too.
	gh.Publish(githubtest.CommentEvent(91000001, "octo/app", "mallory", "token: "+secret, time.Now().UTC()))
	eventually(t, "both findings after the restart", 2*time.Minute, func() bool {
		return count(`SELECT count(*) FROM occurrences`) == 2
	})
	took := time.Since(killedAt)
	t.Logf("the killed paste fetch ran again and its finding was recorded %s after SIGKILL", took.Round(100*time.Millisecond))
	if n := count(`SELECT count(*) FROM occurrences WHERE source = 'pastesite'`); n != 1 {
		t.Fatalf("%d paste occurrences, want 1", n)
	}
	var attempt int
	var errs string
	if err := pool.QueryRow(ctx, `SELECT attempt, coalesce(errors::text, '') FROM river_job WHERE kind = 'paste_fetch'`).Scan(&attempt, &errs); err != nil {
		t.Fatal(err)
	}
	if attempt != 2 || !strings.Contains(errs, "rescued") {
		t.Fatalf("paste fetch job: attempt %d, errors %s; want the dead process's attempt rescued", attempt, errs)
	}
	if took > 2*time.Minute {
		t.Fatalf("recovered after %s, want within 2 minutes", took)
	}
}
