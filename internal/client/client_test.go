package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/client"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/matcher"
	"github.com/leakwatch/leakwatch/web"
)

// apiBundle is the real API on loopback, an organisation and an admin's
// write and read tokens.
type apiBundle struct {
	url                   string
	orgID                 int64
	keys                  *keys.Store
	writeToken, readToken string
}

func setup(t *testing.T) apiBundle {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	authStore := auth.NewStore(pool, auth.Config{})
	srv, err := web.New(web.Config{
		Incidents: incidents.NewService(pool, nil, logger, incidents.Config{}), Auth: authStore, Orgs: orgs.NewStore(pool),
		Keys: keys.NewStore(pool), Audit: audit.NewStore(pool), BaseURL: "http://leakwatch.test", Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// Tokens act with their creator's rights: an admin makes them.
	admin, _, err := authStore.EnsureUser(ctx, audit.System, "admin@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := authStore.AddMember(ctx, audit.System, org.ID, admin.ID, auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	b := apiBundle{url: ts.URL, orgID: org.ID, keys: keys.NewStore(pool)}
	if b.writeToken, _, err = authStore.CreateToken(ctx, audit.System, org.ID, admin.ID, "ci", auth.ScopeWrite); err != nil {
		t.Fatal(err)
	}
	if b.readToken, _, err = authStore.CreateToken(ctx, audit.System, org.ID, admin.ID, "ro", auth.ScopeRead); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAddKey registers a key through the real API and checks every field
// lands, and that refusals come back as *APIError with the API's reason.
func TestAddKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	fp, err := matcher.Compute([]byte("Zq8Wm3Xr7Tn2Vb5Kc9Hd4Lf0Pq6Ys1Ue"), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(b.url+"/", b.writeToken)
	if err != nil {
		t.Fatal(err)
	}
	want := client.Key{
		Name: "db password", Fingerprint: fp.String(), Provider: "postgres", Environment: "production",
		Owner: "data team", Notes: "read-write on orders", Tags: []string{"db", "prod"}, MaxAgeDays: 30,
		RevocationURL: "https://hooks.example/revoke",
	}
	id, err := c.AddKey(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := b.keys.List(ctx, b.orgID, keys.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 1 {
		t.Fatalf("%d keys, want 1", len(ks))
	}
	k := ks[0]
	if k.ID != id || k.Name != want.Name || k.Fingerprint != want.Fingerprint || k.Provider != want.Provider ||
		k.Environment != want.Environment || k.Owner != want.Owner || k.Notes != want.Notes ||
		len(k.Tags) != 2 || k.MaxAgeDays != 30 || k.RevocationURL != want.RevocationURL {
		t.Fatalf("key %d: %+v, want %+v", id, k, want)
	}

	// A read token is refused, and the error says why.
	ro, err := client.New(b.url, b.readToken)
	if err != nil {
		t.Fatal(err)
	}
	want.Name = "other"
	_, err = ro.AddKey(ctx, want)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Code != "forbidden" || apiErr.Message == "" {
		t.Fatalf("read token: %v", err)
	}
	// A bad fingerprint is a 4xx with a reason, not a 500.
	_, err = c.AddKey(ctx, client.Key{Name: "bad", Fingerprint: "lw1:nope"})
	if !errors.As(err, &apiErr) || apiErr.Status/100 != 4 || apiErr.Message == "" {
		t.Fatalf("bad fingerprint: %v", err)
	}
	// A token that is not one: 401.
	bad, _ := client.New(b.url, "lwt_nope")
	if _, err := bad.AddKey(ctx, want); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("unknown token: %v", err)
	}
}

func TestNewRefusesBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "leakwatch.example.com", "ftp://leakwatch.example.com", "https://", "http://[::1"} {
		if _, err := client.New(u, "t"); !errors.Is(err, client.ErrBaseURL) {
			t.Errorf("New(%q): %v, want ErrBaseURL", u, err)
		}
	}
	if _, err := client.New("https://leakwatch.example.com", ""); !errors.Is(err, client.ErrNoToken) {
		t.Error("New without a token succeeded")
	}
}
