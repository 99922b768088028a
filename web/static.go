package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed static/*
var staticFS embed.FS

// staticFiles serves the embedded assets under content-hashed names
// ("fingerprint.3f2a9c1d.js"), cached forever.
type staticFiles struct {
	byName   map[string]string // "fingerprint.js" -> "fingerprint.3f2a9c1d.js"
	byHashed map[string][]byte
}

func newStaticFiles() (*staticFiles, error) {
	sf := &staticFiles{byName: map[string]string{}, byHashed: map[string][]byte{}}
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("read static assets: %w", err)
	}
	for _, e := range entries {
		b, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read static asset %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(b)
		ext := path.Ext(e.Name())
		hashed := strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:4]) + ext
		sf.byName[e.Name()] = hashed
		sf.byHashed[hashed] = b
	}
	return sf, nil
}

// url returns the content-hashed URL of an asset; templates call it as
// {{static "fingerprint.js"}}. An unknown name fails template execution.
func (sf *staticFiles) url(name string) (string, error) {
	h, ok := sf.byName[name]
	if !ok {
		return "", fmt.Errorf("no static asset %q", name)
	}
	return "/static/" + h, nil
}

func (sf *staticFiles) serve(c echo.Context) error {
	name := c.Param("file")
	b, ok := sf.byHashed[name]
	if !ok {
		return echo.ErrNotFound
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	return c.Blob(http.StatusOK, ct, b)
}
