package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	ghcrawler "github.com/leakwatch/leakwatch/crawler/github"
	"github.com/leakwatch/leakwatch/internal/auth"
)

func TestAPIGitHubWatchesAndHealth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.mustOrg(t, "acme")
	other := b.mustOrg(t, "other")
	b.mustUser(t, "admin@acme.example", acme.ID, auth.RoleAdmin)
	b.mustUser(t, "viewer@acme.example", acme.ID, auth.RoleViewer)
	b.mustUser(t, "admin@other.example", other.ID, auth.RoleAdmin)
	admin := b.signIn(t, "admin@acme.example")
	viewer := b.signIn(t, "viewer@acme.example")

	// Without the crawler's store: a clear 503.
	if status, _ := viewer.do(http.MethodGet, "/api/v1/github/health", nil); status != http.StatusServiceUnavailable {
		t.Fatalf("health without a store: %d, want 503", status)
	}
	b.srv.github = ghcrawler.NewFeeds(b.pool)

	var w ghcrawler.Watch
	admin.mustJSON(http.MethodPost, "/api/v1/github/watches", map[string]string{"kind": "org", "target": "acme-corp"}, http.StatusCreated, &w)
	if w.Feed != "github:org:acme-corp" || w.OrgID != acme.ID {
		t.Fatalf("watch %+v", w)
	}
	admin.mustJSON(http.MethodPost, "/api/v1/github/watches", map[string]string{"kind": "repo", "target": "acme-corp/api"}, http.StatusCreated, nil)
	for _, bad := range []map[string]string{{"kind": "org", "target": "../x"}, {"kind": "team", "target": "x"}, {"kind": "repo", "target": "no-slash"}} {
		if status, _ := admin.do(http.MethodPost, "/api/v1/github/watches", bad); status != http.StatusBadRequest {
			t.Errorf("watch %v: %d, want 400", bad, status)
		}
	}
	if status, _ := viewer.do(http.MethodPost, "/api/v1/github/watches", map[string]string{"kind": "user", "target": "eve"}); status != http.StatusForbidden {
		t.Fatalf("viewer adding a watch: %d, want 403", status)
	}

	var list struct {
		Items []ghcrawler.Watch `json:"items"`
	}
	viewer.mustJSON(http.MethodGet, "/api/v1/github/watches", nil, http.StatusOK, &list)
	if len(list.Items) != 2 {
		t.Fatalf("watches %+v", list.Items)
	}
	// Another organisation sees none of them and cannot remove them.
	otherAdmin := b.signIn(t, "admin@other.example")
	otherAdmin.mustJSON(http.MethodGet, "/api/v1/github/watches", nil, http.StatusOK, &list)
	if len(list.Items) != 0 {
		t.Fatalf("other org sees %+v", list.Items)
	}
	if status, _ := otherAdmin.do(http.MethodDelete, fmt.Sprintf("/api/v1/github/watches/%d", w.ID), nil); status != http.StatusNotFound {
		t.Fatalf("other org deleting: %d, want 404", status)
	}

	// Health lists the public feed and the organisation's watched feeds once
	// the poller has written them, with token budgets.
	ctx := context.Background()
	for _, f := range []string{ghcrawler.FeedPublic, "github:org:acme-corp", "github:user:someone-else"} {
		if _, err := b.pool.Exec(ctx, `INSERT INTO crawl_feeds (name, events_total, gaps_total, missed_total, last_success_at) VALUES ($1, 42, 1, 7, now())`, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := ghcrawler.SaveBudgets(ctx, b.pool, []ghcrawler.TokenBudget{{ID: "tok-abcd1234", Limit: 5000, Remaining: 4000}}); err != nil {
		t.Fatal(err)
	}
	// Push-fetch coverage: 150 of 200 pushes of this hour fetched.
	if _, err := b.pool.Exec(ctx, `INSERT INTO github_push_coverage (hour, seen, fetched) VALUES (date_trunc('hour', now()), 200, 150)`); err != nil {
		t.Fatal(err)
	}
	var h ghcrawler.Health
	viewer.mustJSON(http.MethodGet, "/api/v1/github/health", nil, http.StatusOK, &h)
	if len(h.PushCoverage) != 1 || h.PushCoverage[0].Seen != 200 || h.PushCoverage[0].Fetched != 150 || h.PushCoverage[0].Ratio != 0.75 {
		t.Fatalf("push coverage %+v", h.PushCoverage)
	}
	if len(h.Feeds) != 2 || h.Feeds[0].Feed != "github:events" || h.Feeds[1].Feed != "github:org:acme-corp" || h.Feeds[1].Gaps != 1 || h.Feeds[1].MissedEstimate != 7 {
		t.Fatalf("health feeds %+v", h.Feeds)
	}
	if len(h.Tokens) != 1 || h.Tokens[0].Remaining != 4000 {
		t.Fatalf("tokens %+v", h.Tokens)
	}

	admin.mustJSON(http.MethodDelete, fmt.Sprintf("/api/v1/github/watches/%d", w.ID), nil, http.StatusNoContent, nil)
	if status, _ := b.client(t).do(http.MethodGet, "/api/v1/github/health", nil); status != http.StatusUnauthorized {
		t.Fatalf("anonymous health: %d, want 401", status)
	}
}
