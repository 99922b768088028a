package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// incidentFixture is an organisation "acme" with a responder, a viewer and
// an admin, another organisation with a responder, and a registered key
// "deploy", served by a real incident service whose key store eradicates
// on rotation.
type incidentFixture struct {
	*testBundle
	svc      *incidents.Service
	sk       webhook.SigningKey // the service's webhook signing key
	rotating *keys.Store        // the key store whose rotations reach the incident service
	org      orgs.Org
	admin    auth.User
	key      keys.Key
}

func newIncidentFixture(t *testing.T) incidentFixture {
	t.Helper()
	b := setup(t)
	rc, err := jobs.NewClient(b.pool, jobs.Config{Logger: b.logger})
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := webhook.GenerateSigningKey()
	svc := incidents.NewService(b.pool, rc, b.logger, incidents.Config{WebhookKeys: []webhook.SigningKey{sk}})
	b.srv.incidents = svc
	ks := keys.NewStore(b.pool).OnRotateTx(svc.KeyRotatedTx)
	b.srv.keys = ks

	org := b.mustOrg(t, "acme")
	b.mustUser(t, "resp@acme.example", org.ID, auth.RoleResponder)
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	admin := b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	other := b.mustOrg(t, "other")
	b.mustUser(t, "resp@other.example", other.ID, auth.RoleResponder)
	k, err := b.keys.Register(context.Background(), audit.System, org.ID, keys.Params{Name: "deploy", Fingerprint: mustParse(t, fingerprint(t, secrets[0]))})
	if err != nil {
		t.Fatal(err)
	}
	return incidentFixture{testBundle: b, svc: svc, sk: sk, rotating: ks, org: org, admin: admin, key: k}
}

// TestIncidentAPI drives an incident through the API: read, acknowledge,
// assign, mark contained, rotate (through the key API), confirm recovery,
// close with review; role checks, other organisations and audit.
func TestIncidentAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIncidentFixture(t)
	b, svc, org, admin, k := f.testBundle, f.svc, f.org, f.admin, f.key
	if err := svc.Record(ctx, []crawler.Finding{{KeyID: k.ID, OrgID: org.ID, Fingerprint: k.Fingerprint, Source: "github", URL: "https://github.com/o/r/blob/x/a#L1",
		Preview: "TOKEN=ghp_****", EventAt: time.Now().Add(-time.Minute), DetectedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []incidents.Incident }
	resp, view, outsider := b.signIn(t, "resp@acme.example"), b.signIn(t, "view@acme.example"), b.signIn(t, "resp@other.example")
	view.mustJSON(http.MethodGet, "/api/v1/incidents?state=open", nil, http.StatusOK, &list)
	if len(list.Items) != 1 || list.Items[0].Phase != incidents.PhaseIdentified {
		t.Fatalf("list %+v", list.Items)
	}
	id := itoa(list.Items[0].ID)
	base := "/api/v1/incidents/" + id

	// Roles and tenancy.
	if s, _ := view.do(http.MethodPost, base+"/acknowledge", nil); s != http.StatusForbidden {
		t.Fatalf("viewer acknowledge = %d", s)
	}
	if s, _ := outsider.do(http.MethodPost, base+"/acknowledge", nil); s != http.StatusNotFound {
		t.Fatalf("other org acknowledge = %d", s)
	}
	if s, _ := outsider.do(http.MethodGet, base, nil); s != http.StatusForbidden && s != http.StatusNotFound {
		t.Fatalf("other org read = %d", s)
	}
	if s, body := resp.do(http.MethodPost, base+"/accept-risk", map[string]string{"reason": "x"}); s != http.StatusForbidden {
		t.Fatalf("responder accept-risk = %d %s", s, body)
	}

	var in incidents.Incident
	resp.mustJSON(http.MethodPost, base+"/acknowledge", nil, http.StatusOK, &in)
	if in.AcknowledgedAt == nil || in.AcknowledgedBy != "resp@acme.example" {
		t.Fatalf("after acknowledge %+v", in)
	}
	resp.mustJSON(http.MethodPost, base+"/assign", map[string]any{"user_id": admin.ID}, http.StatusOK, &in)
	if in.AssigneeID == nil || *in.AssigneeID != admin.ID {
		t.Fatalf("assignee %v", in.AssigneeID)
	}
	if s, body := resp.do(http.MethodPost, base+"/recover", nil); s != http.StatusConflict || errorCode(t, body) != "invalid_transition" {
		t.Fatalf("recover while identified = %d %s", s, body)
	}
	if s, _ := resp.do(http.MethodPost, base+"/revoke", nil); s != http.StatusConflict {
		t.Fatalf("revoke without endpoint = %d", s)
	}
	resp.mustJSON(http.MethodPost, base+"/contain", map[string]string{"note": "disabled in the console"}, http.StatusOK, &in)
	if in.Phase != incidents.PhaseContained {
		t.Fatalf("phase %s", in.Phase)
	}
	adminC := b.signIn(t, "admin@acme.example")
	adminC.mustJSON(http.MethodPost, "/api/v1/keys/"+itoa(k.ID)+"/rotate", map[string]string{"fingerprint": fingerprint(t, secrets[1])}, http.StatusOK, nil)
	resp.mustJSON(http.MethodPost, base+"/recover", map[string]string{"note": "deployed"}, http.StatusOK, &in)
	if s, body := resp.do(http.MethodPost, base+"/close", map[string]string{"root_cause": "x"}); s != http.StatusUnprocessableEntity || errorCode(t, body) != "review_required" {
		t.Fatalf("close without review = %d %s", s, body)
	}
	resp.mustJSON(http.MethodPost, base+"/notes", map[string]string{"note": "post-mortem on Friday"}, http.StatusOK, nil)
	resp.mustJSON(http.MethodPost, base+"/close", map[string]string{"root_cause": "env file committed", "leak_vector": "public push", "follow_ups": "pre-commit hook"}, http.StatusOK, &in)
	if in.Phase != incidents.PhaseClosed || in.Review == nil || in.TimeToContain == nil || in.TimeToRotate == nil {
		t.Fatalf("closed %+v", in)
	}

	var d incidents.Details
	view.mustJSON(http.MethodGet, base, nil, http.StatusOK, &d)
	var kinds []string
	for _, e := range d.Timeline {
		kinds = append(kinds, e.Kind+":"+e.ToPhase)
	}
	want := []string{"opened:identified", "acknowledged:", "assigned:", "marked_contained:contained", "rotated:eradicated", "transition:recovered", "note:", "closed:closed"}
	if len(kinds) != len(want) {
		t.Fatalf("timeline %v", kinds)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("timeline %v, want %v", kinds, want)
		}
	}
	if len(d.OccurrenceList) != 1 || d.OccurrenceList[0].Preview != "TOKEN=ghp_****" {
		t.Fatalf("occurrences %+v", d.OccurrenceList)
	}

	var st incidents.Stats
	view.mustJSON(http.MethodGet, "/api/v1/incidents/stats?days=7", nil, http.StatusOK, &st)
	if st.Opened != 1 || st.ContainP50 == nil || st.RotateP50 == nil {
		t.Fatalf("stats %+v", st)
	}

	// Revocation endpoints: admin only, secret shown once, other orgs' keys refused.
	var ep struct {
		HMACSecret string `json:"hmac_secret"`
	}
	adminC.mustJSON(http.MethodPut, "/api/v1/keys/"+itoa(k.ID)+"/revocation-endpoint", map[string]any{"url": "https://revoke.acme.example/hook", "hmac": true}, http.StatusOK, &ep)
	if !webhook.ValidSecret(ep.HMACSecret) {
		t.Fatalf("secret %q", ep.HMACSecret)
	}
	if s, _ := resp.do(http.MethodPut, "/api/v1/revocation-endpoint", map[string]any{"url": "https://revoke.acme.example/hook"}); s != http.StatusForbidden {
		t.Fatalf("responder sets endpoint = %d", s)
	}
	if s, _ := adminC.do(http.MethodPut, "/api/v1/revocation-endpoint", map[string]any{"url": "ftp://x"}); s != http.StatusUnprocessableEntity {
		t.Fatalf("ftp endpoint = %d", s)
	}
	var eps struct {
		Items []incidents.EndpointInfo
	}
	adminC.mustJSON(http.MethodGet, "/api/v1/revocation-endpoints", nil, http.StatusOK, &eps)
	if len(eps.Items) != 1 || eps.Items[0].Host != "revoke.acme.example" || !eps.Items[0].HMAC || eps.Items[0].KeyID == nil {
		t.Fatalf("endpoints %+v", eps.Items)
	}
	if s, raw := adminC.do(http.MethodGet, "/api/v1/revocation-endpoints", nil); strings.Contains(string(raw), "whsec_") || strings.Contains(string(raw), "/hook") || s != http.StatusOK {
		t.Fatalf("listing reveals the secret or path: %s", raw)
	}
	adminC.mustJSON(http.MethodDelete, "/api/v1/keys/"+itoa(k.ID)+"/revocation-endpoint", nil, http.StatusNoContent, nil)
	if s, _ := adminC.do(http.MethodDelete, "/api/v1/revocation-endpoint", nil); s != http.StatusNotFound {
		t.Fatalf("delete missing default = %d", s)
	}

	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action LIKE 'incident.%' AND object_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 6 { // acknowledge, assign, contain, recover, note, close
		t.Fatalf("audited incident actions = %d, want 6", n)
	}

	// The published webhook keys.
	var wk struct{ Keys []webhook.PublicKey }
	b.client(t).mustJSON(http.MethodGet, "/.well-known/leakwatch/webhook-keys", nil, http.StatusOK, &wk)
	if len(wk.Keys) != 1 || wk.Keys[0].Key != f.sk.PublicString() || !wk.Keys[0].Current {
		t.Fatalf("webhook keys %+v", wk)
	}
}

func TestIncidentSettingsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	admin := b.mustUser(t, "admin@acme.example", org.ID, auth.RoleAdmin)
	other := b.mustOrg(t, "other")
	stranger := b.mustUser(t, "x@other.example", other.ID, auth.RoleAdmin)
	view, adm := b.signIn(t, "view@acme.example"), b.signIn(t, "admin@acme.example")

	var st incidents.Settings
	view.mustJSON(http.MethodGet, "/api/v1/incident-settings", nil, http.StatusOK, &st)
	if st.AckCriticalS != 900 {
		t.Fatalf("default %+v", st)
	}
	body := map[string]any{"ack_critical_seconds": 300, "ack_high_seconds": 3600, "ack_medium_seconds": 14400, "ack_low_seconds": 86400,
		"phase_limit_seconds": 7200, "default_assignee_id": admin.ID, "escalation_slack_url": "https://hooks.slack.example/services/T/B/secretpart"}
	if s, _ := view.do(http.MethodPut, "/api/v1/incident-settings", body); s != http.StatusForbidden {
		t.Fatalf("viewer put = %d", s)
	}
	status, raw := adm.do(http.MethodPut, "/api/v1/incident-settings", body)
	if status != http.StatusOK || strings.Contains(string(raw), "secretpart") {
		t.Fatalf("put = %d %s", status, raw)
	}
	view.mustJSON(http.MethodGet, "/api/v1/incident-settings", nil, http.StatusOK, &st)
	if st.AckCriticalS != 300 || !st.EscalationConfigured || st.DefaultAssigneeID == nil || *st.DefaultAssigneeID != admin.ID {
		t.Fatalf("after put %+v", st)
	}
	body["default_assignee_id"] = stranger.ID
	if s, raw := adm.do(http.MethodPut, "/api/v1/incident-settings", body); s != http.StatusUnprocessableEntity {
		t.Fatalf("foreign assignee = %d %s", s, raw)
	}
	body["default_assignee_id"] = nil
	body["ack_low_seconds"] = 5
	if s, _ := adm.do(http.MethodPut, "/api/v1/incident-settings", body); s != http.StatusBadRequest {
		t.Fatalf("5s limit = %d", s)
	}
}
