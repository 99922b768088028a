package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
)

// TestKilledMidCrawlResumes kills the real binary with SIGKILL while it is
// polling, fetching pushes and recording findings, publishes more events
// while it is down, and starts it again. Every planted secret must end up
// as exactly one occurrence, the key's incident must alert exactly once, and
// no gap may be recorded, because the checkpoint and the queued jobs are in
// PostgreSQL: jobs the dead process had started are run again (after
// LEAKWATCH_JOB_RESCUE_AFTER) and recording them twice changes nothing.
func TestKilledMidCrawlResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	fx := leakedKeyFixture(t, "ci token")
	dbURL, pool, slackFake, secret := fx.DBURL, fx.Pool, fx.Slack, fx.Secret

	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPollInterval(1)
	traffic := gh.NewTraffic(secret, 50_000_000, 20)
	planted := 0
	publish := func(n int) {
		evs := traffic.Make(n)
		gh.Publish(evs...)
		for _, raw := range evs {
			var ev struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			id, err := strconv.ParseInt(ev.ID, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if traffic.Planted(id) {
				planted++
			}
		}
	}

	env := append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"LEAKWATCH_HTTP_ADDR=127.0.0.1:0",
		"LEAKWATCH_OPS_ADDR=127.0.0.1:0",
		"LEAKWATCH_GITHUB_API_URL="+gh.APIURL(),
		"LEAKWATCH_WEBHOOK_ALLOW_NETS=127.0.0.0/8",
		"LEAKWATCH_GITHUB_TOKENS=t1,t2",
		"LEAKWATCH_GITHUB_MIN_POLL_INTERVAL=50ms",
		"LEAKWATCH_KEY_RELOAD_INTERVAL=1s",
		"LEAKWATCH_JOB_TIMEOUT=4s",
		"LEAKWATCH_GITHUB_PUSH_TIMEOUT=4s",
		"LEAKWATCH_JOB_RESCUE_AFTER=5s",
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
	occurrences := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM occurrences`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	first := start()
	publish(120)
	eventually(t, "the first findings", 60*time.Second, func() bool { return occurrences() >= 10 })
	// The alert goes out before the kill: an incoming webhook cannot be
	// de-duplicated if a process dies between Slack's answer and the commit,
	// and what is tested here is that resuming does not alert again.
	eventually(t, "the Slack alert", 60*time.Second, func() bool { return len(slackFake.messages()) >= 1 })
	publish(120)
	time.Sleep(150 * time.Millisecond) // let the poller take some of them
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait() //nolint:errcheck
	atKill := occurrences()
	var stuck, queued int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state IN ('available', 'scheduled', 'retryable')) FROM river_job`).Scan(&stuck, &queued); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed with %d of %d planted secrets recorded, %d jobs left running, %d queued", atKill, planted, stuck, queued)
	publish(50) // while nobody polls

	second := start()
	defer func() {
		second.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		second.Wait()                          //nolint:errcheck
	}()
	// In-flight jobs of the dead process are rescued by River's periodic
	// rescuer (every 30 s) once they are 5 s old.
	eventually(t, "every planted secret recorded", 120*time.Second, func() bool { return occurrences() >= planted })
	time.Sleep(500 * time.Millisecond)
	if n := occurrences(); n != planted {
		t.Fatalf("occurrences = %d, want %d (one per planted event; %d when killed)", n, planted, atKill)
	}
	if atKill >= planted {
		t.Fatalf("the process finished everything before it was killed (%d of %d): the test proves nothing", atKill, planted)
	}
	var incidents, gaps int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM incidents`).Scan(&incidents); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM crawl_gaps`).Scan(&gaps); err != nil {
		t.Fatal(err)
	}
	if incidents != 1 || gaps != 0 {
		t.Fatalf("incidents = %d, gaps = %d; want 1 and 0", incidents, gaps)
	}
	if n := len(slackFake.messages()); n != 1 {
		t.Fatalf("%d Slack alerts, want exactly 1", n)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("logs contain the secret")
	}
}
