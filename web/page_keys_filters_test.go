package web

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// TestKeysProviderEnvironmentFilters: the keys list filters by provider
// and environment, keeps both in the next page's link, refuses an unknown
// environment, and shows a hostile filter value as text.
func TestKeysProviderEnvironmentFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "view@acme.example", org.ID, auth.RoleViewer)
	seedIncidents(t, b.pool, org.ID, 9, "k-")
	if _, err := b.pool.Exec(ctx, `UPDATE keys SET provider = CASE WHEN name IN ('k-1','k-2','k-3','k-4','k-5') THEN 'aws' ELSE 'github' END,
		environment = CASE WHEN name IN ('k-1','k-2','k-3','k-6') THEN 'staging' ELSE 'production' END WHERE org_id = $1`, org.ID); err != nil {
		t.Fatal(err)
	}
	c := b.signIn(t, "view@acme.example")
	keyRows := regexp.MustCompile(`<tr id="key-\d+">`)
	count := func(path string) int {
		t.Helper()
		st, _, page := c.page(path)
		if st != http.StatusOK {
			t.Fatalf("%s = %d", path, st)
		}
		return len(keyRows.FindAllString(page, -1))
	}
	for path, want := range map[string]int{
		"/keys?provider=aws": 5, "/keys?environment=staging": 4, "/keys?provider=aws&environment=staging": 3,
		"/keys?provider=github&environment=production": 3, "/keys?provider=gcp": 0,
	} {
		if got := count(path); got != want {
			t.Errorf("%s: %d rows, want %d", path, got, want)
		}
	}
	// Pages keep the filters.
	seen, next := 0, "/keys?provider=aws&environment=staging&limit=2"
	for pages := 0; next != ""; pages++ {
		_, _, page := c.page(next)
		seen += len(keyRows.FindAllString(page, -1))
		next = ""
		if m := regexp.MustCompile(`href="([^"]+)" id="keys-next"`).FindStringSubmatch(page); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
			if !strings.Contains(next, "provider=aws") || !strings.Contains(next, "environment=staging") {
				t.Fatalf("next link drops the filters: %s", next)
			}
		}
		if pages > 3 {
			t.Fatal("pages never end")
		}
	}
	if seen != 3 {
		t.Fatalf("paged through %d keys, want 3", seen)
	}
	// The API filters the same way (GET /api/v1/keys).
	for path, want := range map[string]int{
		"/api/v1/keys?provider=aws": 5, "/api/v1/keys?provider=aws&environment=staging": 3, "/api/v1/keys?environment=production&provider=github": 3,
	} {
		var out struct {
			Items []struct {
				Provider, Environment string
			} `json:"items"`
		}
		c.mustJSON(http.MethodGet, path, nil, http.StatusOK, &out)
		if len(out.Items) != want {
			t.Errorf("%s: %d keys, want %d", path, len(out.Items), want)
		}
	}
	if st, body := c.do(http.MethodGet, "/api/v1/keys?environment=moon", nil); st != http.StatusBadRequest || errorCode(t, body) != "invalid" {
		t.Fatalf("API unknown environment = %d %s", st, body)
	}
	if st, _, _ := c.page("/keys?environment=moon"); st != http.StatusBadRequest {
		t.Fatalf("unknown environment = %d", st)
	}
	_, _, page := c.page(`/keys?provider=%22%3E%3Cscript%3Ex%3C/script%3E`)
	if strings.Contains(page, "<script>x</script>") || !strings.Contains(page, `value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"`) {
		t.Fatal("a hostile provider filter is not escaped")
	}
}
