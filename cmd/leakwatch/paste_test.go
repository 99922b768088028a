package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/crawler/paste/pastetest"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/matcher"
)

// TestPasteSourcesEndToEnd runs the real wiring with a paste sources file
// naming a Pastebin fake (refusing our IP) and an RSS paste site holding a
// registered secret: the secret becomes an incident with the paste's
// provenance, and /metrics tells the refused source apart from a working one.
func TestPasteSourcesEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.URL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	secret := randomToken(t, "ghp_", 36)
	fp, err := matcher.Compute([]byte(secret), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.NewStore(pool).Add(ctx, audit.System, org.ID, "deploy-bot token", fp); err != nil {
		t.Fatal(err)
	}

	pb := pastetest.NewPastebin()
	defer pb.Close()
	pb.SetWhitelisted(false)
	site := pastetest.NewFeed(pastetest.FormatRSS)
	defer site.Close()
	leakAt := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	site.Publish(pastetest.Paste{Key: "Hk3mZ", Title: "prod env", User: "mallory", Date: leakAt,
		Text: "# env\nAPP_ENV=prod\nGITHUB_TOKEN=" + secret + "\n"})

	sources := filepath.Join(t.TempDir(), "paste-sources.json")
	conf := `{"sources":[
		{"type":"pastebin","url":"` + pb.URL + `","interval":"1s"},
		{"type":"feed","name":"pastesite","format":"rss","url":"` + site.FeedURL() + `","raw_url_template":"` + site.URL + `/raw/{id}","interval":"1s"}]}`
	if err := os.WriteFile(sources, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"DATABASE_URL":                 dbURL,
		"LEAKWATCH_GITHUB_POLL":        "false",
		"LEAKWATCH_PASTE_SOURCES_FILE": sources,
		"LEAKWATCH_WEBHOOK_ALLOW_NETS": "127.0.0.0/8", // the fake sites are on loopback
	}
	svc := startService(t, env)
	base, logs := svc.Base, svc.Logs

	var url, actor, path, source string
	var line int
	eventually(t, "the paste occurrence", 30*time.Second, func() bool {
		err := pool.QueryRow(ctx, `SELECT source, url, actor, path, line FROM occurrences`).Scan(&source, &url, &actor, &path, &line)
		return err == nil
	})
	if source != "pastesite" || url != site.URL+"/p/Hk3mZ" || actor != "mallory" || path != "prod env" || line != 3 {
		t.Fatalf("occurrence = %s %s %s %q line %d", source, url, actor, path, line)
	}

	eventually(t, "pastebin reported unauthorised", 30*time.Second, func() bool {
		m := get(t, base+"/metrics")
		return strings.Contains(m, `leakwatch_paste_source_state{kind="pastebin",source="pastebin",state="unauthorised"} 1`) &&
			strings.Contains(m, `leakwatch_paste_source_state{kind="feed",source="pastesite",state="ok"} 1`)
	})
	// The same through the API, for a read-only token.
	authStore := auth.NewStore(pool, auth.Config{})
	viewer, _, err := authStore.EnsureUser(ctx, audit.System, "monitoring@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := authStore.AddMember(ctx, audit.System, org.ID, viewer.ID, auth.RoleViewer); err != nil {
		t.Fatal(err)
	}
	token, _, err := authStore.CreateToken(ctx, audit.System, org.ID, viewer.ID, "monitoring", auth.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/paste/sources", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Items []paste.Health `json:"items"`
	}
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/paste/sources: %d %v", resp.StatusCode, err)
	}
	states := map[string]string{}
	for _, h := range health.Items {
		states[h.Source] = h.State
	}
	if states["pastebin"] != paste.StateUnauthorised || states["pastesite"] != paste.StateOK {
		t.Fatalf("API states = %v", states)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("logs contain the secret")
	}
	svc.Stop(t)
}

func TestPasteSourcesFileSetting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, file, wantErr string
		sources             int
	}{
		{"unset", "", "", 0},
		{"two sources", write("ok.json", `{"sources":[{"type":"gist"},{"type":"pastebin","limit":50}]}`), "", 2},
		{"missing file", filepath.Join(dir, "nope.json"), "LEAKWATCH_PASTE_SOURCES_FILE", 0},
		{"invalid source", write("bad.json", `{"sources":[{"type":"feed","name":"x","format":"rss"}]}`), "absolute http(s) URL", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := LoadConfig(func(k string) string {
				if k == "LEAKWATCH_PASTE_SOURCES_FILE" {
					return c.file
				}
				return ""
			})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.PasteSources.Sources) != c.sources {
				t.Fatalf("sources = %+v, want %d", cfg.PasteSources.Sources, c.sources)
			}
		})
	}
}
