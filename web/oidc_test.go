package web

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/dbtest"
)

// fakeIdP is an OpenID Connect provider on loopback: discovery, JWKS, an
// authorize endpoint that approves at once, and a token endpoint that
// returns an RS256 ID token for the current identity.
type fakeIdP struct {
	*httptest.Server
	key      *rsa.PrivateKey
	clientID string
	mu       sync.Mutex
	email    string
	verified bool
	badSig   bool
	codes    map[string]string // code -> nonce
}

func newFakeIdP(t *testing.T, clientID string) *fakeIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIdP{key: key, clientID: clientID, codes: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{ //nolint:errcheck
			"issuer": f.URL, "authorization_endpoint": f.URL + "/authorize", "token_endpoint": f.URL + "/token",
			"jwks_uri": f.URL + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}) //nolint:errcheck
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != clientID || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		code := randomString()
		f.mu.Lock()
		f.codes[code] = q.Get("nonce")
		f.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("code_verifier") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		nonce, ok := f.codes[r.Form.Get("code")]
		delete(f.codes, r.Form.Get("code"))
		email, verified, badSig := f.email, f.verified, f.badSig
		f.mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		signKey := f.key
		if badSig {
			signKey, _ = rsa.GenerateKey(rand.Reader, 2048)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: signKey}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		claims, _ := json.Marshal(map[string]any{
			"iss": f.URL, "sub": "user-" + email, "aud": clientID, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
			"nonce": nonce, "email": email, "email_verified": verified,
		})
		jws, err := signer.Sign(claims)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		idToken, _ := jws.CompactSerialize()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "id_token": idToken}) //nolint:errcheck
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIdP) as(email string, verified, badSig bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.email, f.verified, f.badSig = email, verified, badSig
}

// TestOIDCSignIn signs in through a fake provider: a verified email of an
// existing member gets a session; an unverified email, a stranger and a
// forged signature do not.
func TestOIDCSignIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	idp := newFakeIdP(t, "leakwatch-test")

	// The server's URL must be known before its OIDC redirect URL.
	var handler http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	o, err := NewOIDC(ctx, OIDCConfig{Issuer: idp.URL, ClientID: "leakwatch-test", ClientSecret: "s3cret", RedirectURL: ts.URL + "/auth/oidc/callback"})
	if err != nil {
		t.Fatal(err)
	}
	authStore := auth.NewStore(pool, auth.Config{Argon: testArgon})
	srv, err := New(Config{
		Incidents: incidents.NewService(pool, nil, logger, incidents.Config{}), Auth: authStore, Orgs: orgs.NewStore(pool), Keys: keys.NewStore(pool),
		Audit: audit.NewStore(pool), OIDC: o, BaseURL: ts.URL, Logger: logger, Gatherer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = srv.Handler()

	org, _, err := orgs.NewStore(pool).Create(ctx, audit.System, "acme")
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := authStore.EnsureUser(ctx, audit.System, "dana@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := authStore.AddMember(ctx, audit.System, org.ID, u.ID, auth.RoleResponder); err != nil {
		t.Fatal(err)
	}
	if _, _, err := authStore.EnsureUser(ctx, audit.System, "loner@acme.example"); err != nil {
		t.Fatal(err)
	}

	signIn := func() (int, *http.Client) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		resp, err := c.Get(ts.URL + "/auth/oidc/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, c
	}
	cases := []struct {
		name          string
		email         string
		verified, bad bool
		want          int
	}{
		{"verified member", "Dana@Acme.example", true, false, http.StatusOK},
		{"unverified email", "dana@acme.example", false, false, http.StatusForbidden},
		{"user without membership", "loner@acme.example", true, false, http.StatusForbidden},
		{"unknown user", "eve@evil.example", true, false, http.StatusForbidden},
		{"forged signature", "dana@acme.example", true, true, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		idp.as(strings.ToLower(tc.email), tc.verified, tc.bad)
		status, c := signIn()
		if status != tc.want {
			t.Errorf("%s: sign-in ends with %d, want %d", tc.name, status, tc.want)
			continue
		}
		resp, err := c.Get(ts.URL + "/api/v1/me")
		if err != nil {
			t.Fatal(err)
		}
		var me meResponse
		json.NewDecoder(resp.Body).Decode(&me) //nolint:errcheck
		resp.Body.Close()
		signedIn := resp.StatusCode == http.StatusOK
		if signedIn != (tc.want == http.StatusOK) {
			t.Errorf("%s: /me = %d", tc.name, resp.StatusCode)
		}
		if signedIn && (me.User.ID != u.ID || me.OrgID != org.ID || me.Role != auth.RoleResponder) {
			t.Errorf("%s: me = %+v", tc.name, me)
		}
	}

	// A callback with a state that was never issued is refused.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(ts.URL + "/auth/oidc/callback?code=x&state=forged")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("forged state = %d", resp.StatusCode)
	}
}
