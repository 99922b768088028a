package slack

import (
	"context"
	"testing"
	"time"
)

// BenchmarkHandleInteraction measures the request path of a click (Slack
// wants the answer within 3 s): signature check, payload parse and the
// River insert, against the real database.
func BenchmarkHandleInteraction(b *testing.B) {
	bb := setupB(b)
	bb.connect(b, ConnectParams{})
	ctx := context.Background()
	payload := clickPayload("U0ALICE", ActionAcknowledge, 1)
	b.ResetTimer()
	for b.Loop() {
		payload["actions"].([]map[string]any)[0]["action_ts"] = time.Now().Format(time.RFC3339Nano)
		h, body := signedRequestB(b, testSecret, time.Now(), payload)
		if err := bb.svc.HandleInteraction(ctx, bb.orgID, h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAlertBlocks measures building the living message.
func BenchmarkAlertBlocks(b *testing.B) {
	ev := time.Now()
	v := view{IncidentID: 1, OrgName: "acme", KeyName: "deploy bot", Provider: "aws", Environment: "production", Severity: "critical",
		Phase: "identified", Repo: hostileRepo, Path: hostilePath, Line: 3, Actor: hostileActor, Preview: hostilePreview,
		URL: "https://github.com/o/r/blob/x/a#L3", EventAt: &ev, DetectedAt: ev}
	for b.Loop() {
		alertBlocks(v, "https://leakwatch.example", "here", true)
	}
}
