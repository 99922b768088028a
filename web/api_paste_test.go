package web

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/internal/auth"
)

// staticSource is a paste.Source that lists nothing; only its name matters
// to registration.
type staticSource struct{ name, kind string }

func (s staticSource) Name() string            { return s.name }
func (s staticSource) Kind() string            { return s.kind }
func (s staticSource) Interval() time.Duration { return time.Minute }
func (s staticSource) List(context.Context, paste.Checkpoint) (paste.Listing, error) {
	return paste.Listing{}, nil
}
func (s staticSource) Fetch(context.Context, paste.Item) ([]paste.Part, error) { return nil, nil }

func TestAPIPasteSources(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := b.mustOrg(t, "acme")
	b.mustUser(t, "viewer@acme.example", org.ID, auth.RoleViewer)
	viewer := b.signIn(t, "viewer@acme.example")

	// Without a paste crawler: an empty list, not an error.
	var got struct {
		Items []paste.Health `json:"items"`
	}
	viewer.mustJSON(http.MethodGet, "/api/v1/paste/sources", nil, http.StatusOK, &got)
	if got.Items == nil || len(got.Items) != 0 {
		t.Fatalf("items = %+v, want []", got.Items)
	}

	store := paste.NewStore(b.pool)
	b.srv.paste = store
	if _, err := store.Register(context.Background(), staticSource{"pastebin", paste.KindPastebin}); err != nil {
		t.Fatal(err)
	}
	viewer.mustJSON(http.MethodGet, "/api/v1/paste/sources", nil, http.StatusOK, &got)
	if len(got.Items) != 1 || got.Items[0].Source != "pastebin" || got.Items[0].State != paste.StatePending {
		t.Fatalf("items = %+v, want pastebin pending", got.Items)
	}

	if status, _ := b.client(t).do(http.MethodGet, "/api/v1/paste/sources", nil); status != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d, want 401", status)
	}
}
