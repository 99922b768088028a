package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/revoketest"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
	"github.com/leakwatch/leakwatch/matcher"
)

// TestScaleOutKill9AndConnectionCuts runs the real binary as 1 web,
// 2 crawler and 3 worker processes on one database, through a TCP proxy,
// against the fake GitHub streaming recorded events (half pushes, each a
// commit to fetch) with registered keys planted in comments and issues.
// Every 2 s a random crawler or worker is killed with SIGKILL and started
// again; then the proxy drops every database connection and refuses new
// ones for 5 s, and nobody is restarted; the stream goes on 11 s after.
//
// Every planted key must end with exactly one incident, one Slack alert
// and one revocation request (one message id, however often delivered);
// every event the fake served up to the poller's checkpoint must have been
// taken live or lie in a recorded gap, and every planted event must be an
// occurrence or lie in a recorded gap; every process alive at the cut must
// still be alive at the end.
func TestScaleOutKill9AndConnectionCuts(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t, t.TempDir())
	r := runScaleOut(t, bin, scaleRun{
		web: 1, crawlers: 2, workers: 3, rate: 60, d: 26 * time.Second,
		keys: 5, killEvery: 2 * time.Second, cutAt: 10 * time.Second, cutFor: 5 * time.Second,
	})
	t.Logf("%s", r)
	if len(r.plants) != 15 {
		t.Fatalf("%d planted events, want 15", len(r.plants))
	}
	if r.kills < 3 {
		t.Fatalf("only %d kills: the run proves little", r.kills)
	}
	for _, p := range r.plants {
		switch {
		case p.occurrences > 1:
			t.Errorf("planted event %d (%s) recorded %d times", p.id, p.key, p.occurrences)
		case p.occurrences == 1 && p.inGap:
			t.Errorf("planted event %d (%s) recorded although inside a recorded gap", p.id, p.key)
		case p.occurrences == 0 && !p.inGap:
			t.Errorf("planted event %d (%s) lost: no occurrence and no recorded gap", p.id, p.key)
		}
	}
	for _, k := range r.keys {
		if k.incidents != 1 || k.alerts != 1 || k.revocations != 1 {
			t.Errorf("key %s: %d incidents, %d Slack alerts, %d revocation requests (%d deliveries); want exactly one each",
				k.name, k.incidents, k.alerts, k.revocations, k.deliveries)
		}
	}
	if r.live+r.missed != r.served {
		t.Errorf("%d events served, %d taken live and %d in recorded gaps: every event must be one or the other", r.served, r.live, r.missed)
	}
	if r.cutConns == 0 {
		t.Error("the cut dropped no connection")
	}
	if len(r.exited) > 0 {
		t.Errorf("processes exited on their own (a connection cut must not need a restart): %v", r.exited)
	}
}

// scaleRun is one scale-out run.
type scaleRun struct {
	web, crawlers, workers int
	rate                   float64       // events per second the fake streams
	d                      time.Duration // how long it streams
	keys                   int           // registered keys, each planted three times
	killEvery              time.Duration // 0: no kills; else SIGKILL a crawler or worker this often before the cut
	cutAt, cutFor          time.Duration // when (from the stream's start) the proxy drops everything, and for how long; 0: never
}

type scalePlant struct {
	id          int64
	key         string
	occurrences int
	inGap       bool
}

type scaleKey struct {
	name                                       string
	incidents, alerts, revocations, deliveries int
}

type scaleResult struct {
	served, live, missed int64
	plants               []scalePlant
	keys                 []scaleKey
	kills                int
	rescued              int // jobs a killed process had started, run again
	cutConns             int // connections the proxy dropped at the cut
	exited               []string
	caughtUp             time.Duration // stream start → every key alerted and the queues drained
}

func (r scaleResult) String() string {
	inGaps := 0
	for _, p := range r.plants {
		if p.inGap {
			inGaps++
		}
	}
	return fmt.Sprintf("%d events served, %d live, %d in recorded gaps; %d kills, %d jobs of killed processes run again; %d connections cut; %d planted events over %d keys (%d in recorded gaps); caught up %s after the stream started",
		r.served, r.live, r.missed, r.kills, r.rescued, r.cutConns, len(r.plants), len(r.keys), inGaps, r.caughtUp.Round(100*time.Millisecond))
}

// fleet is the service's processes, each a real binary with roles.
type fleet struct {
	t    testing.TB
	bin  string
	env  []string
	logs *syncBuffer

	mu      sync.Mutex
	procs   map[string]*fleetProc
	stopped bool
}

type fleetProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	killed bool
}

func (f *fleet) start(name, role string) {
	f.t.Helper()
	cmd := exec.Command(f.bin, "serve", "--roles", role)
	cmd.Env = f.env
	w := &prefixWriter{prefix: name + " ", w: f.logs}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	p := &fleetProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }() //nolint:errcheck
	f.mu.Lock()
	f.procs[name] = p
	f.mu.Unlock()
}

// kill sends SIGKILL to the named process and waits for it.
func (f *fleet) kill(name string) {
	f.mu.Lock()
	p := f.procs[name]
	p.killed = true
	f.mu.Unlock()
	p.cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck
	<-p.done
}

// exited names the processes that ended without being killed or stopped.
func (f *fleet) exited() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name, p := range f.procs {
		select {
		case <-p.done:
			if !p.killed {
				out = append(out, fmt.Sprintf("%s (%v)", name, p.cmd.ProcessState))
			}
		default:
		}
	}
	return out
}

// stop sends SIGTERM to every process and waits.
func (f *fleet) stop() {
	f.mu.Lock()
	procs := f.procs
	f.stopped = true
	f.mu.Unlock()
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill() //nolint:errcheck
		}
	}
}

// prefixWriter prefixes each write (a log line) with the process's name.
type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// cutProxy forwards TCP connections to PostgreSQL; Cut drops every one and
// refuses new ones for a while, as a network partition or a database
// failover does.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	until time.Time
}

func startCutProxy(t testing.TB, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close() })
	go p.serve()
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := time.Now().Before(p.until)
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(s, c); done <- struct{}{} }() //nolint:errcheck
	go func() { io.Copy(c, s); done <- struct{}{} }() //nolint:errcheck
	<-done
	c.Close()
	s.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// Cut closes every connection and refuses new ones for d. It returns how
// many connections (client and server sides) it closed.
func (p *cutProxy) Cut(d time.Duration) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.until = time.Now().Add(d)
	for c := range p.conns {
		c.Close()
	}
	return len(p.conns)
}

// runScaleOut runs the fleet through one scaleRun and gathers what
// happened once every planted key is alerted and revoked and the event
// and fetch queues are drained (or 75 s after the stream ended).
func runScaleOut(t testing.TB, bin string, run scaleRun) scaleResult {
	t.Helper()
	ctx := context.Background()
	var res scaleResult
	dbURL := dbtest.URL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	slackFake := newTimedSlack(t)
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := orgs.NewStore(pool).SetSlackWebhook(ctx, audit.System, org.ID, slackFake.URL+"/services/T000/B000/XXXX"); err != nil {
		t.Fatal(err)
	}
	signing, err := webhook.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	receiver := revoketest.NewServer(nil, []ed25519.PublicKey{signing.Public()}, nil)
	t.Cleanup(receiver.Close)
	if _, err := incidents.NewService(pool, nil, logger, incidents.Config{}).SetRevocationEndpoint(ctx, audit.System, org.ID, 0, receiver.URL+"/revoke", false); err != nil {
		t.Fatal(err)
	}
	secrets := make([]string, run.keys)
	for i := range run.keys {
		secrets[i] = randomToken(t, "sk_live_", 32) // revoked through the organisation's endpoint
		fp, err := matcher.Compute([]byte(secrets[i]), matcher.ComputeOpts{})
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("planted-%02d", i)
		if _, err := keys.NewStore(pool).Add(ctx, audit.System, org.ID, name, fp); err != nil {
			t.Fatal(err)
		}
		res.keys = append(res.keys, scaleKey{name: name})
	}

	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	mix, err := recordedMix(gh, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	const seedID = 39_999_999_999
	gh.Publish(githubtest.CommentEvent(seedID, "octo/seed", "u", "seed", time.Now()))

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	toks := make([]string, 20)
	for i := range toks {
		toks[i] = fmt.Sprintf("scale-token-%02d", i)
	}
	f := &fleet{t: t, bin: bin, logs: &syncBuffer{}, procs: map[string]*fleetProc{}, env: append(os.Environ(),
		"DATABASE_URL="+u.String(),
		"LEAKWATCH_HTTP_ADDR=127.0.0.1:0",
		"LEAKWATCH_OPS_ADDR=127.0.0.1:0",
		"LEAKWATCH_WEBHOOK_ALLOW_NETS=127.0.0.0/8",
		"LEAKWATCH_WEBHOOK_SIGNING_KEY="+signing.String(),
		"LEAKWATCH_GITHUB_API_URL="+gh.APIURL(),
		"LEAKWATCH_GITHUB_RAW_URL="+gh.RawURL(),
		"LEAKWATCH_GITHUB_TOKENS="+strings.Join(toks, ","),
		"LEAKWATCH_GHARCHIVE_URL=off",
		"LEAKWATCH_JOB_TIMEOUT=4s",
		"LEAKWATCH_GITHUB_PUSH_TIMEOUT=4s",
		"LEAKWATCH_JOB_RESCUE_AFTER=5s",
		"LEAKWATCH_LOG_FORMAT=json",
		"LEAKWATCH_LOG_LEVEL=warn",
	)}
	t.Cleanup(func() {
		f.stop()
		if t.Failed() {
			t.Logf("logs:\n%s", f.logs.String())
		}
	})
	var killable []string
	for i := range run.web {
		f.start(fmt.Sprintf("web-%d", i+1), RoleWeb)
	}
	for i := range run.crawlers {
		name := fmt.Sprintf("crawler-%d", i+1)
		f.start(name, RoleCrawler)
		killable = append(killable, name)
	}
	for i := range run.workers {
		name := fmt.Sprintf("worker-%d", i+1)
		f.start(name, RoleWorker)
		killable = append(killable, name)
	}

	checkpoint := func() (lastID, total int64) { return publicFeedCheckpoint(ctx, pool) }
	baseTotal := waitForSeedPolled(t, checkpoint, seedID)

	st, err := gh.StartStream(githubtest.StreamOpts{Rate: run.rate, FirstID: seedID + 1, Make: mix})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Each key is planted three times, in a comment or an issue, at even
	// intervals over the stream, outside the cut and the poller's recovery
	// from it: events then fall in the recorded gap by design (the leader
	// retries 5 s after losing the database, and finds the 300 newest
	// events). A key whose every plant fell in gaps would fail the test.
	var plantMu sync.Mutex
	type span struct{ from, to time.Duration }
	spans := []span{{time.Second, run.d}}
	if run.cutFor > 0 {
		spans = []span{{time.Second, run.cutAt - time.Second}, {run.cutAt + run.cutFor + 7*time.Second, run.d}}
	}
	var open time.Duration
	for _, sp := range spans {
		open += max(sp.to-sp.from, 0)
	}
	var slots []time.Duration
	for j := range 3 * run.keys {
		off := open * time.Duration(2*j+1) / time.Duration(6*run.keys)
		for _, sp := range spans {
			if n := max(sp.to-sp.from, 0); off < n {
				slots = append(slots, sp.from+off)
				break
			} else {
				off -= n
			}
		}
	}
	for i, at := range slots {
		k := i % run.keys
		name, leak := res.keys[k].name, "STRIPE_KEY="+secrets[k]
		repo := fmt.Sprintf("scale-org/svc-%02d", i)
		st.PlantAt(start.Add(at), func(id int64, now time.Time) json.RawMessage {
			plantMu.Lock()
			res.plants = append(res.plants, scalePlant{id: id, key: name})
			plantMu.Unlock()
			if i%2 == 0 {
				return githubtest.CommentEvent(id, repo, "mallory", "my config:\n```\n"+leak+"\n```\n", now)
			}
			return githubtest.IssuesEvent(id, repo, "mallory", "Deploy broken", "Steps:\n"+leak+"\n", now)
		})
	}

	// Kills until a second before the cut (or the stream's end).
	killUntil := run.d
	if run.cutFor > 0 {
		killUntil = run.cutAt - time.Second
	}
	var killWG sync.WaitGroup
	if run.killEvery > 0 {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 18))
		killWG.Go(func() {
			for at := run.killEvery; at < killUntil; at += run.killEvery {
				time.Sleep(time.Until(start.Add(at)))
				name := killable[rng.IntN(len(killable))]
				f.kill(name)
				res.kills++
				time.Sleep(300 * time.Millisecond)
				role := RoleWorker
				if strings.HasPrefix(name, "crawler") {
					role = RoleCrawler
				}
				f.start(name, role)
			}
		})
	}
	if run.cutFor > 0 {
		time.Sleep(time.Until(start.Add(run.cutAt)))
		killWG.Wait()
		res.cutConns = proxy.Cut(run.cutFor)
	}
	time.Sleep(time.Until(start.Add(run.d)))
	killWG.Wait()
	st.Stop()
	last := st.NextID() - 1

	count := func(q string, args ...any) int {
		var n int
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	settled := func() bool {
		if got, _ := checkpoint(); got < last {
			return false
		}
		posts := slackFake.all()
		for _, k := range res.keys {
			alerted := false
			for _, p := range posts {
				alerted = alerted || strings.Contains(p.body, k.name)
			}
			if !alerted {
				return false
			}
		}
		return count(`SELECT count(*) FROM river_job WHERE state IN ('available', 'running', 'retryable')
			AND kind IN ('github_events', 'github_push', 'incident_revoke', 'slack_sync')`) == 0 &&
			count(`SELECT count(*) FROM incidents WHERE containment = 'requested'`) == 0
	}
	deadline := time.Now().Add(75 * time.Second)
	for !settled() && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	res.caughtUp = time.Since(start)
	time.Sleep(time.Second) // a doubled alert would show by now
	res.exited = f.exited()

	lastID, total := checkpoint()
	res.live = total - baseTotal
	for _, ev := range gh.Served("") {
		if ev.ID > seedID && ev.ID <= lastID {
			res.served++
		}
	}
	if err := pool.QueryRow(ctx, `SELECT COALESCE(sum(estimated_missed), 0)::bigint FROM crawl_gaps
		WHERE feed = $1 AND after_event_id >= $2 AND before_event_id <= $3::bigint + 1`, ghcrawler.FeedPublic, int64(seedID), lastID).Scan(&res.missed); err != nil {
		t.Fatal(err)
	}
	res.rescued = count(`SELECT count(*) FROM river_job WHERE errors::text LIKE '%rescued%'`)
	plantMu.Lock()
	defer plantMu.Unlock()
	for i := range res.plants {
		p := &res.plants[i]
		p.occurrences = count(`SELECT count(*) FROM occurrences WHERE event_id = $1`, strconv.FormatInt(p.id, 10))
		p.inGap = count(`SELECT count(*) FROM crawl_gaps WHERE feed = $1 AND after_event_id < $2 AND before_event_id > $2`, ghcrawler.FeedPublic, p.id) > 0
	}
	posts := slackFake.all()
	reqs := receiver.Requests()
	for i := range res.keys {
		k := &res.keys[i]
		k.incidents = count(`SELECT count(*) FROM incidents i JOIN keys k ON k.id = i.key_id WHERE k.name = $1`, k.name)
		for _, p := range posts {
			if strings.Contains(p.body, k.name) {
				k.alerts++
			}
		}
		ids := map[string]bool{}
		for _, r := range reqs {
			var body incidents.RevocationRequest
			if r.Verified && json.Unmarshal(r.Body, &body) == nil && body.Key.Name == k.name {
				ids[r.ID] = true
				k.deliveries++
			}
		}
		k.revocations = len(ids)
	}
	for _, s := range secrets {
		if strings.Contains(f.logs.String(), s) {
			t.Fatal("logs contain a planted secret")
		}
	}
	return res
}
