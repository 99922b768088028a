package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
	"github.com/leakwatch/leakwatch/matcher"
	"github.com/leakwatch/leakwatch/web"
)

// TestKeysImport runs `leakwatch keys import` against the real API and
// checks that the keys land with their metadata, and that no request body
// ever holds a secret.
func TestKeysImport(t *testing.T) {
	t.Parallel()
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
	var mu sync.Mutex
	var bodies bytes.Buffer
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies.Write(b)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		srv.Handler().ServeHTTP(w, r)
	}))
	defer ts.Close()
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
	writeToken, _, err := authStore.CreateToken(ctx, audit.System, org.ID, admin.ID, "ci", auth.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	readToken, _, err := authStore.CreateToken(ctx, audit.System, org.ID, admin.ID, "ro", auth.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		"ghp_R8xk2Lq9Zt4Vn7Bw1Yc5Hd3Mf6Jp0Ks2Ea9T",
		"AKIAZ7QW3ER5TY8UI2OPXK4M",
		"Zq8Wm3Xr7Tn2Vb5Kc9Hd4Lf0Pq6Ys1Ue",
	}
	runImport := func(stdin string, args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := run(ctx, append([]string{"keys", "import", "--api", ts.URL}, args...), strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	// --name for several secrets numbers them; the token comes from a file.
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(writeToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runImport(secrets[0]+"\r\n"+secrets[1]+"\n\n", "--token-file", tokenFile, "--name", "deploy", "--env", "staging")
	if code != 0 || strings.Count(out, "registered key") != 2 {
		t.Fatalf("import = %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// A CSV gives each secret its metadata.
	csvPath := filepath.Join(t.TempDir(), "keys.csv")
	if err := os.WriteFile(csvPath, []byte("name,environment,provider,owner,notes,tags,max_age_days,revocation_url\n"+
		"db password,production,postgres,data team,read-write on orders,db|prod,30,https://hooks.example/revoke\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runImport(secrets[2]+"\n", "--token", writeToken, "--csv", csvPath)
	if code != 0 {
		t.Fatalf("csv import = %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	ks, err := keys.NewStore(pool).List(ctx, org.ID, keys.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 3 {
		t.Fatalf("%d keys, want 3", len(ks))
	}
	for i, s := range secrets {
		fp, err := matcher.Compute([]byte(s), matcher.ComputeOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if ks[i].Fingerprint != fp.String() {
			t.Errorf("key %d fingerprint %s, want %s", i, ks[i].Fingerprint, fp)
		}
	}
	if ks[0].Name != "deploy-1" || ks[1].Name != "deploy-2" || ks[0].Environment != "staging" || ks[1].Provider != "aws" {
		t.Errorf("flag metadata: %+v %+v", ks[0], ks[1])
	}
	if k := ks[2]; k.Name != "db password" || k.Provider != "postgres" || k.Owner != "data team" || k.MaxAgeDays != 30 ||
		len(k.Tags) != 2 || k.RevocationURL != "https://hooks.example/revoke" || k.Notes != "read-write on orders" {
		t.Errorf("csv metadata: %+v", k)
	}

	// A weak secret stops the whole import before anything is sent.
	before := bodies.Len()
	code, _, errOut = runImport(secrets[0]+"x\npassword123\n", "--token", writeToken, "--name", "weak")
	if code != 1 || !strings.Contains(errOut, "line 2") || !strings.Contains(errOut, "weak secret") || bodies.Len() != before {
		t.Fatalf("weak import = %d, sent %d bytes, stderr %s", code, bodies.Len()-before, errOut)
	}
	// A read token is refused by the API, and the message says why.
	code, _, errOut = runImport(secrets[0]+"y\n", "--token", readToken, "--name", "ro")
	if code != 1 || !strings.Contains(errOut, "forbidden") {
		t.Fatalf("read-token import = %d, stderr %s", code, errOut)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, s := range append(secrets, "password123") {
		if strings.Contains(bodies.String(), s) || strings.Contains(bodies.String(), s[4:]) {
			t.Fatal("a request body holds a secret")
		}
	}
}
