package slack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"

	"github.com/leakwatch/leakwatch/incidents/slack/slacktest"
)

// signedRequest builds an interactivity request as Slack sends it.
func signedRequest(t *testing.T, secret string, at time.Time, payload any) (http.Header, []byte) {
	return signedRequestB(t, secret, at, payload)
}

func signedRequestB(t testing.TB, secret string, at time.Time, payload any) (http.Header, []byte) {
	t.Helper()
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("payload=" + url.QueryEscape(string(p)))
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h, body
}

func clickPayload(user, action string, incidentID int64) map[string]any {
	return map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user, "username": "someone"},
		"team": map[string]any{"id": "T0ACME"}, "channel": map[string]any{"id": testChannel},
		"actions": []map[string]any{{"type": "button", "action_id": action, "block_id": fmt.Sprintf("lw_incident_%d", incidentID),
			"value": strconv.FormatInt(incidentID, 10), "action_ts": "1700000001.000200"}},
	}
}

func TestInteractionSignature(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.connect(t, ConnectParams{})
	id := b.open(t)
	payload := clickPayload("U0ALICE", ActionAcknowledge, id)

	for _, tc := range []struct {
		name   string
		secret string
		at     time.Time
		tamper bool
		ok     bool
	}{
		{"valid", testSecret, time.Now(), false, true},
		{"tampered body", testSecret, time.Now(), true, false},
		{"wrong secret", "another-signing-secret-000000", time.Now(), false, false},
		{"stale", testSecret, time.Now().Add(-6 * time.Minute), false, false},
		{"from the future", testSecret, time.Now().Add(6 * time.Minute), false, false},
	} {
		h, body := signedRequest(t, tc.secret, tc.at, payload)
		if tc.tamper {
			body = []byte(strings.Replace(string(body), "lw_ack", "lw_false_positive", 1))
		}
		err := b.svc.HandleInteraction(ctx, b.orgID, h, body)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: got %v, want ErrBadSignature", tc.name, err)
		}
	}
	job := rivertest.RequireInserted(ctx, t, riverpgxv5.New(b.pool), &ActionArgs{}, nil)
	if job.Args.IncidentID != id || job.Args.Action != ActionAcknowledge || job.Args.SlackUserID != "U0ALICE" || job.Args.OrgID != b.orgID {
		t.Fatalf("queued %+v", job.Args)
	}
	// Nothing acted yet: the request only queues.
	var acked *time.Time
	if err := b.pool.QueryRow(ctx, `SELECT acknowledged_at FROM incidents WHERE id = $1`, id).Scan(&acked); err != nil || acked != nil {
		t.Fatalf("acknowledged on the request path: %v %v", acked, err)
	}
	// Another organisation's endpoint refuses a request signed for this one.
	var other int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO orgs (name) VALUES ('other') RETURNING id`).Scan(&other); err != nil {
		t.Fatal(err)
	}
	h, body := signedRequest(t, testSecret, time.Now(), payload)
	if err := b.svc.HandleInteraction(ctx, other, h, body); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("unconnected org: %v", err)
	}
}

func TestActionsByRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	work := func(t *testing.T, b *testBundle, user, action string, id int64) {
		t.Helper()
		w := &actionWorker{s: b.svc}
		args := ActionArgs{OrgID: b.orgID, IncidentID: id, Action: action, SlackUserID: user, ActionTS: "1.2", Channel: testChannel}
		if err := w.Work(ctx, &river.Job[ActionArgs]{JobRow: &rivertype.JobRow{}, Args: args}); err != nil {
			t.Fatalf("%s by %s: %v", action, user, err)
		}
	}
	phase := func(t *testing.T, b *testBundle, id int64) (string, *time.Time, *int64) {
		t.Helper()
		var p string
		var acked *time.Time
		var assignee *int64
		if err := b.pool.QueryRow(ctx, `SELECT phase, acknowledged_at, assignee_id FROM incidents WHERE id = $1`, id).Scan(&p, &acked, &assignee); err != nil {
			t.Fatal(err)
		}
		return p, acked, assignee
	}

	for _, tc := range []struct {
		role    string
		action  string
		acts    bool
		refusal string
	}{
		{"owner", ActionFalsePositive, true, ""},
		{"admin", ActionAssignMe, true, ""},
		{"responder", ActionAcknowledge, true, ""},
		{"responder", ActionRevoke, false, "no revocation endpoint"},
		{"viewer", ActionAcknowledge, false, "can view incidents but not act"},
		{"", ActionAcknowledge, false, "not a member of this Leakwatch organisation"},   // unknown to Slack's users.info
		{"", ActionFalsePositive, false, "not a member of this Leakwatch organisation"}, // in Slack, not in the org
	} {
		t.Run(tc.role+" "+tc.action, func(t *testing.T) {
			// Users with a role, and the non-member clicking False positive,
			// exist in the Slack workspace.
			t.Parallel()
			b := setup(t)
			b.connect(t, ConnectParams{})
			var uid int64
			if tc.role != "" {
				uid = b.member(t, "pat@example.com", tc.role)
			}
			if tc.role != "" || tc.action != ActionAcknowledge {
				b.fake.AddUser(slacktest.User{ID: "U0PAT", Email: "Pat@Example.com", Name: "Pat"})
			}
			id := b.open(t)
			work(t, b, "U0PAT", tc.action, id)
			p, acked, assignee := phase(t, b, id)
			eph := b.fake.Ephemerals()
			var audited int
			if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE org_id = $1 AND object_id = $2 AND details ->> 'via' = 'slack'`,
				b.orgID, strconv.FormatInt(id, 10)).Scan(&audited); err != nil {
				t.Fatal(err)
			}
			if !tc.acts {
				if len(eph) != 1 || !strings.Contains(eph[0].Text, tc.refusal) || eph[0].User != "U0PAT" {
					t.Fatalf("ephemerals %+v, want one saying %q", eph, tc.refusal)
				}
				if p != "identified" || acked != nil || audited != 0 {
					t.Fatalf("refused action changed the incident: %s %v, audited %d", p, acked, audited)
				}
				return
			}
			if len(eph) != 0 || audited != 1 {
				t.Fatalf("ephemerals %+v, audited %d", eph, audited)
			}
			switch tc.action {
			case ActionFalsePositive:
				if p != "false_positive" {
					t.Fatalf("phase %s", p)
				}
			case ActionAssignMe:
				if assignee == nil || *assignee != uid {
					t.Fatalf("assignee %v, want %d", assignee, uid)
				}
			case ActionAcknowledge:
				if acked == nil {
					t.Fatal("not acknowledged")
				}
			}
			// The action is a timeline entry by the member, which the living
			// message picks up like any other.
			var actor string
			if err := b.pool.QueryRow(ctx, `SELECT actor FROM incident_events WHERE incident_id = $1 ORDER BY id DESC LIMIT 1`, id).Scan(&actor); err != nil || actor != "pat@example.com" {
				t.Fatalf("last timeline actor %q %v", actor, err)
			}
		})
	}
}

func TestSendTest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	if err := b.svc.SendTest(ctx, b.orgID, "admin@example.com"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("unconnected: %v", err)
	}
	b.connect(t, ConnectParams{})
	if err := b.svc.SendTest(ctx, b.orgID, "admin <!channel>"); err != nil {
		t.Fatal(err)
	}
	top := b.fake.TopLevel(testChannel)
	if len(top) != 1 || !strings.Contains(top[0].Text, "test message") || strings.Contains(top[0].Text, "<!channel>") {
		t.Fatalf("test message %+v", top)
	}
	b.fake.RevokeToken(testToken)
	if err := b.svc.SendTest(ctx, b.orgID, "admin@example.com"); err == nil {
		t.Fatal("revoked token: no error")
	}
	if conn, _ := b.store.Connection(ctx, b.orgID); conn.BrokenAt == nil {
		t.Fatal("revoked token did not mark the connection broken")
	}
}

// TestDefaultClientGuarded: a Service built without an HTTPClient posts
// through the guarded client with no allowlist, so an incoming-webhook URL
// on loopback, written past the set-time check, is never reached; with the
// deployment allowing loopback it is, but a redirect from there to
// another loopback listener is not followed.
func TestDefaultClientGuarded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	var hits, redirected atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		redirected.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(target.Close)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, target.URL+"/metadata", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(hook.Close)
	if _, err := b.pool.Exec(ctx, `UPDATE orgs SET slack_webhook_url = $1 WHERE id = $2`, hook.URL+"/services/T/B/X", b.orgID); err != nil {
		t.Fatal(err)
	}
	unguarded := NewService(b.pool, b.store, nil, b.deps(), Config{})
	if err := unguarded.SendTest(ctx, b.orgID, "admin@example.com"); err == nil || hits.Load() != 0 {
		t.Fatalf("default client reached loopback: err %v, %d hits", err, hits.Load())
	}
	if err := b.svc.SendTest(ctx, b.orgID, "admin@example.com"); err == nil || hits.Load() != 1 || redirected.Load() != 0 {
		t.Fatalf("allowed hook: err %v, %d hits, %d redirected", err, hits.Load(), redirected.Load())
	}
}
