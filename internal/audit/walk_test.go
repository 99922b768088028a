package audit_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/crawler"
	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/eventhooks"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/matcher"
)

// walkStep is one mutating domain method: setup prepares what it acts on
// (as the system, committed) and returns the call, made as a.
type walkStep struct {
	method string // "keys.Store.Register": the package, type and method
	action string // the audit action it records
	setup  func(t *testing.T, w *walker) func(ctx context.Context, a audit.Actor) error
}

// walkSteps lists every exported mutating method of the domain packages
// (keys, orgs, auth, incidents) and of the GitHub watch, event webhook and
// Slack stores.
// TestWalkListIsComplete fails when one is missing (see walkExempt).
var walkSteps = []walkStep{
	{"keys.Store.Register", "key.create", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		fp := w.fingerprint(t)
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.keys.Register(ctx, a, w.orgID, keys.Params{Name: "walk-register", Fingerprint: fp})
			return err
		}
	}},
	{"keys.Store.Add", "key.create", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		fp := w.fingerprint(t)
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.keys.Add(ctx, a, w.orgID, "walk-add", fp)
			return err
		}
	}},
	{"keys.Store.Edit", "key.update", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.key(t)
		return func(ctx context.Context, a audit.Actor) error {
			notes := "edited by the walk"
			_, err := w.keys.Edit(ctx, a, w.orgID, id, keys.Update{Notes: &notes})
			return err
		}
	}},
	{"keys.Store.Rotate", "key.rotate", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id, fp := w.key(t), w.fingerprint(t)
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.keys.Rotate(ctx, a, w.orgID, id, fp)
			return err
		}
	}},
	{"keys.Store.SetState", "key.revoked", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.key(t)
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.keys.SetState(ctx, a, w.orgID, id, keys.StateRevoked)
			return err
		}
	}},

	{"orgs.Store.Create", "org.create", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			_, created, err := w.orgs.Create(ctx, a, "walk-new-org")
			if err == nil && !created {
				err = fmt.Errorf("not created")
			}
			return err
		}
	}},
	{"auth.Store.CreateOrgWithOwner", "org.create", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			r, err := w.auth.CreateOrgWithOwner(ctx, w.orgs, a, "walk-owned-org", "walk-owner@example.com")
			if err == nil && !r.OrgCreated {
				err = fmt.Errorf("not created")
			}
			return err
		}
	}},
	{"orgs.Store.Update", "org.update", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			days := 45
			_, err := w.orgs.Update(ctx, a, w.orgID, orgs.Update{DefaultMaxAgeDays: &days})
			return err
		}
	}},
	{"orgs.Store.SetSlackWebhook", "org.update", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			return w.orgs.SetSlackWebhook(ctx, a, w.orgID, "https://hooks.slack.com/services/T000/B000/walk")
		}
	}},
	{"orgs.Store.Delete", "org.delete", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		o, _, err := w.orgs.Create(t.Context(), audit.System, "walk-doomed")
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error { return w.orgs.Delete(ctx, a, o.ID) }
	}},

	{"auth.Store.EnsureUser", "user.create", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			_, created, err := w.auth.EnsureUser(ctx, a, "walk-ensure@acme.example")
			if err == nil && !created {
				err = fmt.Errorf("not created")
			}
			return err
		}
	}},
	{"auth.Store.AddMember", "member.add", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		u := w.user(t)
		return func(ctx context.Context, a audit.Actor) error {
			_, _, err := w.auth.AddMember(ctx, a, w.orgID, u, auth.RoleViewer)
			return err
		}
	}},
	{"auth.Store.SetRole", "member.update", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		u := w.member(t)
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.auth.SetRole(ctx, a, w.orgID, u, auth.RoleAdmin)
			return err
		}
	}},
	{"auth.Store.RemoveMember", "member.remove", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		u := w.member(t)
		return func(ctx context.Context, a audit.Actor) error { return w.auth.RemoveMember(ctx, a, w.orgID, u) }
	}},
	{"auth.Store.SetPassword", "user.password_set", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		u := w.user(t)
		return func(ctx context.Context, a audit.Actor) error {
			return w.auth.SetPassword(ctx, a, u, "a long enough walk password")
		}
	}},
	{"auth.Store.CreateToken", "token.create", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			_, _, err := w.auth.CreateToken(ctx, a, w.orgID, w.ownerID, "walk", auth.ScopeRead)
			return err
		}
	}},
	{"auth.Store.RevokeToken", "token.revoke", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		_, tok, err := w.auth.CreateToken(t.Context(), audit.System, w.orgID, w.ownerID, "walk", auth.ScopeRead)
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.auth.RevokeToken(ctx, a, w.orgID, tok.ID)
			return err
		}
	}},
	{"auth.Store.Invite", "invitation.create", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			_, _, err := w.auth.Invite(ctx, a, w.orgID, w.ownerID, "walk-invited@acme.example", auth.RoleViewer)
			return err
		}
	}},
	{"auth.Store.RevokeInvitation", "invitation.revoke", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		_, inv, err := w.auth.Invite(t.Context(), audit.System, w.orgID, w.ownerID, w.email("revoked"), auth.RoleViewer)
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error {
			return w.auth.RevokeInvitation(ctx, a, w.orgID, inv.ID)
		}
	}},
	{"auth.Store.AcceptInvitation", "invitation.accept", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		token, _, err := w.auth.Invite(t.Context(), audit.System, w.orgID, w.ownerID, w.email("accepts"), auth.RoleViewer)
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error {
			_, _, err := w.auth.AcceptInvitation(ctx, a, token, 0, "")
			return err
		}
	}},
	{"auth.Store.NewSession", "session.create", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			_, _, err := w.auth.NewSession(ctx, a, w.ownerID, w.orgID, "password")
			return err
		}
	}},
	{"auth.Store.EndSession", "session.delete", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		_, sess, err := w.auth.NewSession(t.Context(), audit.System, w.ownerID, w.orgID, "password")
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error { return w.auth.EndSession(ctx, a, sess.ID) }
	}},
	{"auth.Store.EndAllSessions", "session.delete_all", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		_, _, err := w.auth.NewSession(t.Context(), audit.System, w.ownerID, w.orgID, "password")
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.auth.EndAllSessions(ctx, a, w.ownerID)
			return err
		}
	}},
	{"auth.Store.NewLoginLink", "login_link.create", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.auth.NewLoginLink(ctx, a, w.ownerID, w.orgID)
			return err
		}
	}},

	{"ghcrawler.Feeds.AddWatch", "github_watch.create", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.feeds.AddWatch(ctx, a, w.orgID, ghcrawler.WatchRepo, "acme/walk")
			return err
		}
	}},
	{"ghcrawler.Feeds.RemoveWatch", "github_watch.delete", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		watch, err := w.feeds.AddWatch(t.Context(), audit.System, w.orgID, ghcrawler.WatchOrg, fmt.Sprintf("walk%d", w.next()))
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error { return w.feeds.RemoveWatch(ctx, a, w.orgID, watch.ID) }
	}},

	{"eventhooks.Store.Create", "webhook.subscribe", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			_, _, err := w.hooks.Create(ctx, a, w.orgID, "https://siem.acme.example/walk", nil)
			return err
		}
	}},
	{"eventhooks.Store.Delete", "webhook.unsubscribe", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		sub, _, err := w.hooks.Create(t.Context(), audit.System, w.orgID, "https://siem.acme.example/walk", nil)
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error { return w.hooks.Delete(ctx, a, w.orgID, sub.ID) }
	}},

	{"slack.Store.Connect", "slack.connect", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			p := walkSlack
			p.Routes = map[string]slack.Route{"high": {Channel: "C0HIGH", Mention: "channel"}}
			return w.slack.Store().Connect(ctx, a, w.orgID, p)
		}
	}},
	{"slack.Store.Disconnect", "slack.disconnect", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		must(t, w.slack.Store().Connect(t.Context(), audit.System, w.orgID, walkSlack))
		return func(ctx context.Context, a audit.Actor) error { return w.slack.Store().Disconnect(ctx, a, w.orgID) }
	}},
	{"slack.Service.QueueTest", "slack.test", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		must(t, w.slack.Store().Connect(t.Context(), audit.System, w.orgID, walkSlack))
		return func(ctx context.Context, a audit.Actor) error { return w.slack.QueueTest(ctx, a, w.orgID) }
	}},
	{"incidents.Service.SetSettings", "incident_settings.update", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.inc.SetSettings(ctx, a, w.orgID, incidents.DefaultSettings(), false)
			return err
		}
	}},
	{"incidents.Service.SetRevocationEndpoint", "revocation_endpoint.set", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.key(t)
		return func(ctx context.Context, a audit.Actor) error {
			_, err := w.inc.SetRevocationEndpoint(ctx, a, w.orgID, id, "https://revoke.acme.example/walk", true)
			return err
		}
	}},
	{"incidents.Service.DeleteRevocationEndpoint", "revocation_endpoint.delete", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.key(t)
		_, err := w.inc.SetRevocationEndpoint(t.Context(), audit.System, w.orgID, id, "https://revoke.acme.example/walk", false)
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error {
			return w.inc.DeleteRevocationEndpoint(ctx, a, w.orgID, id)
		}
	}},
	{"incidents.Service.QueueRevocationTest", "revocation_endpoint.test", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.key(t)
		_, err := w.inc.SetRevocationEndpoint(t.Context(), audit.System, w.orgID, id, "https://revoke.acme.example/walk", false)
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error { return w.inc.QueueRevocationTest(ctx, a, w.orgID, id) }
	}},
	{"incidents.Service.Acknowledge", "incident.acknowledge", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.incident(t)
		return func(ctx context.Context, a audit.Actor) error { return w.inc.Acknowledge(ctx, id, a) }
	}},
	{"incidents.Service.Assign", "incident.assign", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.incident(t)
		return func(ctx context.Context, a audit.Actor) error { return w.inc.Assign(ctx, id, w.ownerID, a) }
	}},
	{"incidents.Service.AddNote", "incident.note", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.incident(t)
		return func(ctx context.Context, a audit.Actor) error { return w.inc.AddNote(ctx, id, a, "looked at it") }
	}},
	{"incidents.Service.MarkContained", "incident.contain", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.incident(t)
		return func(ctx context.Context, a audit.Actor) error {
			return w.inc.MarkContained(ctx, id, a, "disabled in the console")
		}
	}},
	{"incidents.Service.RevokeNow", "incident.revoke", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.incident(t)
		var keyID int64
		must(t, w.pool.QueryRow(t.Context(), `SELECT key_id FROM incidents WHERE id = $1`, id).Scan(&keyID))
		_, err := w.inc.SetRevocationEndpoint(t.Context(), audit.System, w.orgID, keyID, "https://revoke.acme.example/walk", false)
		must(t, err)
		return func(ctx context.Context, a audit.Actor) error { return w.inc.RevokeNow(ctx, id, a) }
	}},
	{"incidents.Service.ConfirmRecovery", "incident.recover", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.eradicated(t)
		return func(ctx context.Context, a audit.Actor) error {
			return w.inc.ConfirmRecovery(ctx, id, a, "running on the new one")
		}
	}},
	{"incidents.Service.Close", "incident.close", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.eradicated(t)
		must(t, w.inc.ConfirmRecovery(t.Context(), id, audit.System, ""))
		return func(ctx context.Context, a audit.Actor) error {
			return w.inc.Close(ctx, id, a, incidents.Review{RootCause: "a paste", LeakVector: "a public gist", FollowUps: "pre-commit hook"})
		}
	}},
	{"incidents.Service.MarkFalsePositive", "incident.false_positive", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.incident(t)
		return func(ctx context.Context, a audit.Actor) error {
			return w.inc.MarkFalsePositive(ctx, id, a, "a test value")
		}
	}},
	{"incidents.Service.AcceptRisk", "incident.accept_risk", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.incident(t)
		return func(ctx context.Context, a audit.Actor) error {
			return w.inc.AcceptRisk(ctx, id, a, "expires tomorrow")
		}
	}},
	{"incidents.Service.Reopen", "incident.reopen", func(t *testing.T, w *walker) func(context.Context, audit.Actor) error {
		id := w.incident(t)
		must(t, w.inc.MarkFalsePositive(t.Context(), id, audit.System, "thought so"))
		return func(ctx context.Context, a audit.Actor) error { return w.inc.Reopen(ctx, id, a, "it was real") }
	}},
}

// walkSlack is a bot connection the Slack steps make.
var walkSlack = slack.ConnectParams{BotToken: "xoxb-walk-0123456789", SigningSecret: "walk-signing-secret-0123", DefaultChannel: "C0WALK"}

// walkExempt are the exported methods whose names look mutating but that
// take no actor, and why.
var walkExempt = map[string]string{
	"orgs.Store.CreateTx":                          "runs in its caller's transaction: walked through auth.Store.CreateOrgWithOwner",
	"auth.Store.EnsureOwnerTx":                     "runs in its caller's transaction: walked through auth.Store.CreateOrgWithOwner",
	"auth.Store.SignIn":                            "records sign-in attempts for throttling only; the sign-in itself is audited by NewSession",
	"auth.Store.UseLoginLink":                      "consumes a link for the NewSession (session.create, method link) that follows",
	"auth.Store.SwitchOrg":                         "moves one's own session between organisations one belongs to; no organisation's data changes",
	"incidents.Service.Record":                     "detections by the system, recorded in each incident's timeline",
	"incidents.Service.KeyRotated":                 "follows a rotation; production runs KeyRotatedTx inside keys.Store.Rotate's audited transaction",
	"incidents.Service.KeyRotatedTx":               "runs inside keys.Store.Rotate's audited transaction",
	"incidents.Service.KeyStateChangedTx":          "runs inside keys.Store.SetState's audited transaction",
	"eventhooks.Store.Reseal":                      "maintenance: re-encrypts signing secrets under the current key without changing them",
	"incidents.Service.ResealRevocationSecrets":    "maintenance: re-encrypts secrets under the current key without changing them",
	"incidents.Service.Sweep":                      "SLA escalations by the system, recorded in each incident's timeline",
	"incidents.Service.RegisterMetrics":            "wiring at construction, no data",
	"incidents.Service.MarkNotified":               "the system records that an alert reached Slack, for the notifier's bookkeeping",
	"incidents.Service.MarkEntryNotified":          "the system records that a timeline entry reached Slack, for the notifier's bookkeeping",
	"incidents.Service.ResealEscalationSlackURLTx": "maintenance, in slack.Store.Reseal's transaction: re-encrypts without changing the URL",
	"slack.Store.MarkBroken":                       "the system records that Slack refused the token, for the integrations page",
	"slack.Store.Reseal":                           "maintenance: re-encrypts bot tokens and signing secrets under the current key without changing them",
}

// mutatingPrefixes start the names of methods that change state.
// A prefix matches the whole name or a name going on with a capital
// (SetRole, not Settings).
var mutatingPrefixes = []string{"Create", "Set", "Update", "Delete", "Add", "Remove", "Revoke", "Rotate", "Invite", "Accept",
	"Close", "Acknowledge", "Assign", "Mark", "Confirm", "Reopen", "Register", "Edit", "Rename", "End", "New", "Use", "Switch", "Ensure",
	"Record", "Reseal", "Sweep", "Insert", "Put", "Move", "Restore", "Enable", "Disable", "Import", "Grant", "Reset",
	"Change", "Connect", "Disconnect", "Subscribe", "Unsubscribe", "Retire", "Reactivate", "Sign", "Purge", "Prune"}

var actorType = reflect.TypeFor[audit.Actor]()

// TestWalkListIsComplete fails when an exported method of a domain Store or
// Service takes an audit.Actor or has a mutating name and is neither walked
// nor exempt, and when the list names a method that does not exist.
func TestWalkListIsComplete(t *testing.T) {
	t.Parallel()
	types := map[string]reflect.Type{
		"keys.Store":        reflect.TypeFor[*keys.Store](),
		"orgs.Store":        reflect.TypeFor[*orgs.Store](),
		"auth.Store":        reflect.TypeFor[*auth.Store](),
		"incidents.Service": reflect.TypeFor[*incidents.Service](),
		"ghcrawler.Feeds":   reflect.TypeFor[*ghcrawler.Feeds](),
		"eventhooks.Store":  reflect.TypeFor[*eventhooks.Store](),
		"slack.Store":       reflect.TypeFor[*slack.Store](),
		"slack.Service":     reflect.TypeFor[*slack.Service](),
	}
	walked := map[string]bool{}
	for _, s := range walkSteps {
		walked[s.method] = true
	}
	seen := map[string]bool{}
	for name, typ := range types {
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			full := name + "." + m.Name
			seen[full] = true
			takesActor := false
			for j := range m.Type.NumIn() {
				takesActor = takesActor || m.Type.In(j) == actorType
			}
			mutating := slices.ContainsFunc(mutatingPrefixes, func(p string) bool {
				rest, ok := strings.CutPrefix(m.Name, p)
				return ok && (rest == "" || unicode.IsUpper(rune(rest[0])))
			})
			switch {
			case walked[full] && !takesActor:
				t.Errorf("%s is walked but takes no audit.Actor", full)
			case walked[full]:
			case takesActor && walkExempt[full] == "":
				t.Errorf("%s takes an audit.Actor but is not in walkSteps", full)
			case mutating && walkExempt[full] == "":
				t.Errorf("%s looks mutating: add it to walkSteps (with an audit.Actor) or to walkExempt with the reason", full)
			}
		}
	}
	for m := range walked {
		if !seen[m] {
			t.Errorf("walkSteps names %s, which does not exist", m)
		}
	}
	for m, why := range walkExempt {
		if !seen[m] || why == "" {
			t.Errorf("walkExempt names %s, which does not exist or has no reason", m)
		}
	}
}

// failAtCommit makes every transaction that wrote an audit entry fail at
// COMMIT while audit_walk_fail has a row: a deferred constraint trigger
// runs after the method made its change and wrote its entry, so what
// persists afterwards is what the method committed outside that
// transaction.
const failAtCommit = `
	CREATE TABLE audit_walk_fail (on_ boolean);
	CREATE FUNCTION audit_walk_fail() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF EXISTS (SELECT 1 FROM audit_walk_fail) THEN
			RAISE EXCEPTION 'audit walk: injected failure at commit';
		END IF;
		RETURN NULL;
	END $$;
	CREATE CONSTRAINT TRIGGER audit_walk_fail AFTER INSERT ON audit_log
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_walk_fail();`

// walker holds the domain stores on one database and the organisation the
// walk acts in.
type walker struct {
	pool    *pgxpool.Pool
	keys    *keys.Store
	orgs    *orgs.Store
	auth    *auth.Store
	inc     *incidents.Service
	feeds   *ghcrawler.Feeds
	hooks   *eventhooks.Store
	slack   *slack.Service
	orgID   int64
	ownerID int64
	n       atomic.Int64
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (w *walker) next() int64 { return w.n.Add(1) }

func (w *walker) email(what string) string {
	return fmt.Sprintf("walk-%s-%d@acme.example", what, w.next())
}

// fingerprint returns the fingerprint of a fresh random-looking secret.
func (w *walker) fingerprint(t *testing.T) matcher.Fingerprint {
	t.Helper()
	fp, err := matcher.Compute([]byte(fmt.Sprintf("ghp_W4lk%08dQz7Xr2Lm9Tn5Vb8Kc3Hd6Jf1", w.next())), matcher.ComputeOpts{})
	must(t, err)
	return fp
}

func (w *walker) key(t *testing.T) int64 {
	t.Helper()
	k, err := w.keys.Register(t.Context(), audit.System, w.orgID, keys.Params{Name: fmt.Sprintf("walk-key-%d", w.next()), Fingerprint: w.fingerprint(t)})
	must(t, err)
	return k.ID
}

func (w *walker) user(t *testing.T) int64 {
	t.Helper()
	u, _, err := w.auth.EnsureUser(t.Context(), audit.System, w.email("user"))
	must(t, err)
	return u.ID
}

func (w *walker) member(t *testing.T) int64 {
	t.Helper()
	u := w.user(t)
	_, _, err := w.auth.AddMember(t.Context(), audit.System, w.orgID, u, auth.RoleViewer)
	must(t, err)
	return u
}

// incident opens an incident on a fresh key and returns its id.
func (w *walker) incident(t *testing.T) int64 {
	t.Helper()
	keyID := w.key(t)
	k, err := w.keys.Key(t.Context(), w.orgID, keyID)
	must(t, err)
	now := time.Now()
	must(t, w.inc.Record(t.Context(), []crawler.Finding{{
		KeyID: keyID, OrgID: w.orgID, Fingerprint: k.Fingerprint, Source: "github", EventID: fmt.Sprint(w.next()),
		EventType: "PushEvent", URL: fmt.Sprintf("https://github.com/o/r/commit/%d", keyID), Repo: "o/r", Line: 1, Column: 1,
		Encoding: "plain", Actor: "someone", Preview: "KEY=ghp_****", EventAt: now.Add(-time.Minute), DetectedAt: now,
	}}))
	var id int64
	must(t, w.pool.QueryRow(t.Context(), `SELECT id FROM incidents WHERE key_id = $1`, keyID).Scan(&id))
	return id
}

// eradicated opens an incident and rotates its key, which eradicates it.
func (w *walker) eradicated(t *testing.T) int64 {
	t.Helper()
	id := w.incident(t)
	var keyID int64
	must(t, w.pool.QueryRow(t.Context(), `SELECT key_id FROM incidents WHERE id = $1`, id).Scan(&keyID))
	_, err := w.keys.Rotate(t.Context(), audit.System, w.orgID, keyID, w.fingerprint(t))
	must(t, err)
	return id
}

// snapshot is a digest of every table's rows, so two snapshots differ
// exactly where something persisted.
func (w *walker) snapshot(t *testing.T) map[string]string {
	t.Helper()
	ctx := t.Context()
	rows, err := w.pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'audit_walk_fail' ORDER BY 1`)
	must(t, err)
	var tables []string
	for rows.Next() {
		var name string
		must(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	must(t, rows.Err())
	out := map[string]string{}
	for _, name := range tables {
		var digest string
		must(t, w.pool.QueryRow(ctx, fmt.Sprintf(`SELECT md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')) FROM %q x`, name)).Scan(&digest))
		out[name] = digest
	}
	return out
}

func changedTables(before, after map[string]string) []string {
	var out []string
	for name, d := range after {
		if before[name] != d {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestAuditWalk calls every mutating domain method twice on the same
// state: first in a transaction made to fail at commit, after the change
// and its audit entry were written, where nothing may persist (no change
// without its entry, no entry without its change); then normally, where
// the change and its entry must both persist, the entry naming the
// actor's request.
func TestAuditWalk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc, err := jobs.NewClient(pool, jobs.Config{Logger: logger})
	must(t, err)
	inc := incidents.NewService(pool, rc, logger, incidents.Config{})
	// Wired as serve wires them: a rotation eradicates the key's incident.
	w := &walker{pool: pool, keys: keys.NewStore(pool).OnRotateTx(inc.KeyRotatedTx).OnStateTx(inc.KeyStateChangedTx), orgs: orgs.NewStore(pool), auth: auth.NewStore(pool, auth.Config{Argon: auth.ArgonParams{Memory: 64, Time: 1, Threads: 1}}),
		inc: inc, feeds: ghcrawler.NewFeeds(pool), hooks: eventhooks.NewStore(pool, nil)}
	box, err := secretbox.Parse("walk:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	must(t, err)
	w.slack = slack.NewService(pool, slack.NewStore(pool, box), rc, slack.Deps{Incidents: inc, Members: w.auth, Orgs: w.orgs}, slack.Config{Logger: logger})
	o, _, err := w.orgs.Create(ctx, audit.System, "acme")
	must(t, err)
	w.orgID = o.ID
	owner, _, err := w.auth.EnsureUser(ctx, audit.System, "owner@acme.example")
	must(t, err)
	w.ownerID = owner.ID
	_, _, err = w.auth.AddMember(ctx, audit.System, o.ID, owner.ID, auth.RoleOwner)
	must(t, err)
	_, err = pool.Exec(ctx, failAtCommit)
	must(t, err)

	actor := audit.Actor{Name: "walker@acme.example", UserID: owner.ID, OrgID: o.ID, IP: "192.0.2.77", UserAgent: "audit-walk"}
	// Serial: the injected failure is database-wide.
	for _, step := range walkSteps {
		t.Run(step.method, func(t *testing.T) {
			call := step.setup(t, w)

			before := w.snapshot(t)
			_, err := pool.Exec(ctx, `INSERT INTO audit_walk_fail VALUES (true)`)
			must(t, err)
			err = call(ctx, actor)
			_, derr := pool.Exec(ctx, `DELETE FROM audit_walk_fail`)
			must(t, derr)
			if err == nil || !strings.Contains(err.Error(), "injected failure at commit") {
				t.Fatalf("with the commit failing: err = %v; want the injected failure (did the method write an audit entry in its transaction?)", err)
			}
			if changed := changedTables(before, w.snapshot(t)); len(changed) > 0 {
				t.Fatalf("with the commit failing, %v changed: the change or its audit entry was committed apart", changed)
			}

			var lastID int64
			must(t, pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM audit_log`).Scan(&lastID))
			if err := call(ctx, actor); err != nil {
				t.Fatalf("committed run: %v", err)
			}
			changed := changedTables(before, w.snapshot(t))
			if !slices.Contains(changed, "audit_log") || len(changed) < 2 {
				t.Fatalf("committed run changed %v; want the change and audit_log", changed)
			}
			var n int
			must(t, pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE id > $1 AND action = $2 AND ip = $3 AND user_agent = $4`,
				lastID, step.action, actor.IP, actor.UserAgent).Scan(&n))
			if n != 1 {
				t.Fatalf("%d %s entries by the walk's request, want 1", n, step.action)
			}
		})
	}
}
