package web

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var pathParam = regexp.MustCompile(`:([a-z_]+)`)

// TestOpenAPICoversRoutes requires every /api/v1 route to be in the served
// OpenAPI document, and every documented operation to be a route.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, body := b.client(t).do(http.MethodGet, "/api/v1/openapi.json", nil)
	if status != http.StatusOK {
		t.Fatalf("GET openapi.json = %d", status)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m, raw := range ops {
			if m == "parameters" {
				continue
			}
			var op struct {
				Summary   string          `json:"summary"`
				Responses json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil || op.Summary == "" || len(op.Responses) == 0 {
				t.Errorf("%s %s: operation needs a summary and responses", m, p)
			}
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	routed := map[string]bool{}
	for _, r := range b.srv.echo.Routes() {
		p, ok := strings.CutPrefix(r.Path, "/api/v1")
		if !ok || r.Method == "echo_route_not_found" {
			continue
		}
		routed[r.Method+" "+pathParam.ReplaceAllString(p, "{$1}")] = true
	}
	var missing, extra []string
	for k := range routed {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !routed[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from openapi.json:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("documented operations with no route:\n  %s", strings.Join(extra, "\n  "))
	}
	if len(routed) < 25 {
		t.Fatalf("only %d API routes found", len(routed))
	}
}
