package slack

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestWeeklyDigest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.connect(t, ConnectParams{Routes: map[string]Route{"low": {DigestOnly: true}}})
	id := b.open(t)
	now := time.Now()
	// Identified 3 hours ago, contained after 1 h, rotated after 2 h, closed.
	if _, err := b.pool.Exec(ctx, `
		UPDATE incidents SET severity = 'low', identified_at = $2::timestamptz, contained_at = $2::timestamptz + interval '1 hour',
			eradicated_at = $2::timestamptz + interval '2 hours', phase = 'closed', closed_at = $2::timestamptz + interval '150 minutes'
		WHERE id = $1`, id, now.Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A key past its maximum age.
	if _, err := b.pool.Exec(ctx, `INSERT INTO keys (org_id, name, fingerprint, provider, max_age_days, created_at) VALUES ($1, 'old one', 'lw1:old', 'aws', 30, now() - interval '90 days')`, b.orgID); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.PostDigest(ctx, b.orgID, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	top := b.fake.TopLevel(testChannel)
	if len(top) != 1 {
		t.Fatalf("%d digests", len(top))
	}
	text := strings.Join(texts(t, top[0].Blocks), "\n")
	for _, want := range []string{"weekly digest", "acme &lt;b&gt;", "opened: *1*", "closed: *1*", "contain: *1h0m0s*", "rotate: *2h0m0s*",
		"Stale keys (past their maximum age): *1*: old one", "Keys never rotated: *2*: ", "digest only): deploy bot (low)"} {
		if !strings.Contains(text, want) {
			t.Errorf("digest lacks %q:\n%s", want, text)
		}
	}
}
