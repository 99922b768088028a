package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"

	"github.com/labstack/echo/v4"
)

// openapi.json documents the /api/v1 routes of this package. Other files
// that add routes to s.api document them in a fragment next to them,
// openapi_NAME.json, holding {"paths": {...}, "components": {"schemas":
// {...}}}; fragments are merged into the served document at start. Every
// operation carries "x-leakwatch-role": the least role it needs (public,
// user, viewer, responder, admin or owner), which TestIsolationWalk checks.
// TestOpenAPICoversRoutes fails if a route and the document disagree.
//
//go:embed openapi*.json
var openAPIFS embed.FS

// buildOpenAPI merges openapi.json and its fragments.
func buildOpenAPI() ([]byte, error) {
	base, err := openAPIFS.ReadFile("openapi.json")
	if err != nil {
		return nil, fmt.Errorf("read openapi.json: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.json: %w", err)
	}
	names, err := fs.Glob(openAPIFS, "openapi_*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	paths := doc["paths"].(map[string]any)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, n := range names {
		b, err := openAPIFS.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		var frag struct {
			Paths      map[string]any `json:"paths"`
			Components struct {
				Schemas map[string]any `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(b, &frag); err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		for p, v := range frag.Paths {
			if _, dup := paths[p]; dup {
				return nil, fmt.Errorf("%s: path %s is already documented", n, p)
			}
			paths[p] = v
		}
		for k, v := range frag.Components.Schemas {
			if _, dup := schemas[k]; dup {
				return nil, fmt.Errorf("%s: schema %s is already defined", n, k)
			}
			schemas[k] = v
		}
	}
	return json.Marshal(doc)
}

func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/json", s.openAPIDoc)
}
