// Package webhook is Leakwatch's outgoing-webhook machinery, shared by
// revocation requests and event webhooks: Standard Webhooks signing (HMAC
// "v1" with a per-endpoint secret and Ed25519 "v1a" with Leakwatch's
// published keys) and verification, an HTTP client that refuses private,
// loopback and link-local addresses unless allowlisted and never follows
// redirects, retry timing with exponential backoff and jitter, and the
// delivery log (every attempt with status, latency and a response excerpt).
//
// Standard Webhooks: https://www.standardwebhooks.com. Each message carries
// webhook-id (stable across retries, for de-duplication), webhook-timestamp
// (Unix seconds) and webhook-signature, a space-separated list of
// "version,base64" signatures of "{id}.{timestamp}.{body}".
package webhook

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of Standard Webhooks.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Prefixes of encoded keys and secrets, as in Standard Webhooks.
const (
	secretPrefix     = "whsec_"
	privateKeyPrefix = "whsk_"
	publicKeyPrefix  = "whpk_"
)

// Verification errors.
var (
	ErrMissingHeaders   = errors.New("webhook headers missing")
	ErrStaleTimestamp   = errors.New("webhook timestamp outside the tolerance")
	ErrInvalidSignature = errors.New("no valid webhook signature")
)

// SigningKey is one of Leakwatch's Ed25519 signing keys.
type SigningKey struct {
	private ed25519.PrivateKey
}

// GenerateSigningKey makes a new Ed25519 signing key.
func GenerateSigningKey() (SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	return SigningKey{private: priv}, nil
}

// ParseSigningKey reads "whsk_" followed by the base64 of the 32-byte seed
// or the 64-byte private key.
func ParseSigningKey(s string) (SigningKey, error) {
	raw, ok := strings.CutPrefix(strings.TrimSpace(s), privateKeyPrefix)
	if !ok {
		return SigningKey{}, errors.New("signing key must start with " + privateKeyPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return SigningKey{}, errors.New("signing key is not valid base64")
	}
	switch len(b) {
	case ed25519.SeedSize:
		return SigningKey{private: ed25519.NewKeyFromSeed(b)}, nil
	case ed25519.PrivateKeySize:
		return SigningKey{private: ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])}, nil
	default:
		return SigningKey{}, fmt.Errorf("signing key has %d bytes, want %d or %d", len(b), ed25519.SeedSize, ed25519.PrivateKeySize)
	}
}

// ParseSigningKeys reads a comma-separated list of signing keys; the first
// signs, the others are still published so receivers can verify messages
// signed before a rotation.
func ParseSigningKeys(s string) ([]SigningKey, error) {
	var out []SigningKey
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, err := ParseSigningKey(part)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// String encodes the private key ("whsk_…"). It is a secret.
func (k SigningKey) String() string {
	return privateKeyPrefix + base64.StdEncoding.EncodeToString(k.private.Seed())
}

// Public returns the public half.
func (k SigningKey) Public() ed25519.PublicKey { return k.private.Public().(ed25519.PublicKey) }

// PublicString encodes the public key ("whpk_…").
func (k SigningKey) PublicString() string {
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(k.Public())
}

// ID names the key: "lwk_" and the first 8 bytes of the public key's
// SHA-256, in hex.
func (k SigningKey) ID() string {
	sum := sha256.Sum256(k.Public())
	return "lwk_" + hex.EncodeToString(sum[:8])
}

// GenerateSecret makes a per-endpoint HMAC secret ("whsec_" + 32 random
// bytes in base64).
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

func secretBytes(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, errors.New("webhook secret must start with " + secretPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(b) < 24 {
		return nil, errors.New("webhook secret must be at least 24 bytes of base64")
	}
	return b, nil
}

// ValidSecret reports whether s is a usable HMAC secret.
func ValidSecret(s string) bool {
	_, err := secretBytes(s)
	return err == nil
}

func signedContent(id string, ts int64, body []byte) []byte {
	b := make([]byte, 0, len(id)+len(body)+24)
	b = append(b, id...)
	b = append(b, '.')
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '.')
	return append(b, body...)
}

// Sign returns the webhook-signature value for the message: "v1,…" when
// hmacSecret is set and "v1a,…" when key is not nil, space-separated.
func Sign(id string, ts time.Time, body []byte, hmacSecret string, key *SigningKey) (string, error) {
	content := signedContent(id, ts.Unix(), body)
	var sigs []string
	if hmacSecret != "" {
		sb, err := secretBytes(hmacSecret)
		if err != nil {
			return "", err
		}
		m := hmac.New(sha256.New, sb)
		m.Write(content)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	if key != nil {
		sigs = append(sigs, "v1a,"+base64.StdEncoding.EncodeToString(ed25519.Sign(key.private, content)))
	}
	if len(sigs) == 0 {
		return "", errors.New("nothing to sign with: no HMAC secret and no signing key")
	}
	return strings.Join(sigs, " "), nil
}

// Verifier checks Standard Webhooks signatures, as a receiver does.
type Verifier struct {
	Secrets    []string            // HMAC secrets ("whsec_…") accepted for v1
	PublicKeys []ed25519.PublicKey // keys accepted for v1a
	Tolerance  time.Duration       // how far the timestamp may be from now; default 5 minutes
	Now        func() time.Time    // default time.Now
}

// Verify checks the headers and raw body: the timestamp must be within the
// tolerance and at least one signature must verify.
func (v Verifier) Verify(h http.Header, body []byte) error {
	id, tsRaw, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return ErrMissingHeaders
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol == 0 {
		tol = 5 * time.Minute
	}
	if d := now().Sub(time.Unix(ts, 0)); d > tol || d < -tol {
		return ErrStaleTimestamp
	}
	content := signedContent(id, ts, body)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		switch version {
		case "v1":
			for _, secret := range v.Secrets {
				sb, err := secretBytes(secret)
				if err != nil {
					continue
				}
				m := hmac.New(sha256.New, sb)
				m.Write(content)
				if hmac.Equal(m.Sum(nil), sig) {
					return nil
				}
			}
		case "v1a":
			for _, pk := range v.PublicKeys {
				if len(pk) == ed25519.PublicKeySize && ed25519.Verify(pk, content, sig) {
					return nil
				}
			}
		}
	}
	return ErrInvalidSignature
}
