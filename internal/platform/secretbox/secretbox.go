// Package secretbox encrypts small secrets at rest (Slack bot tokens,
// signing secrets and incoming-webhook URLs, event webhook and revocation
// endpoint HMAC secrets, the stored Ed25519 webhook signing key) with
// AES-256-GCM under a key from configuration (LEAKWATCH_ENCRYPTION_KEY).
//
// A ciphertext reads "lwsb1:KEYID:BASE64(nonce‖sealed)", where KEYID names
// the key that sealed it and is bound into the GCM additional data. The
// configuration lists one or more keys, "id1:base64key1,id2:base64key2": the
// first seals, all of them open. Rotating the key:
//
//  1. put a new key first and keep the old one after it, restart;
//  2. re-seal the stored secrets under the new key (Box.Reseal on each, as
//     slack.Store.Reseal does for Slack connections);
//  3. drop the old key from the list once nothing sealed under it remains.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Errors.
var (
	// ErrNoKey is returned when sealing without a configured key, or when
	// opening a ciphertext sealed under a key that is not configured.
	ErrNoKey = errors.New("encryption key not configured")
	// ErrCorrupt is returned for a ciphertext that is malformed or fails
	// authentication.
	ErrCorrupt = errors.New("ciphertext corrupt or sealed under another key")
)

const prefix = "lwsb1:"

var keyIDPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`) })

// Box seals and opens secrets.
type Box struct {
	current string
	aeads   map[string]cipher.AEAD
}

// Parse reads the configured key list: comma-separated "id:base64" entries,
// each key exactly 32 bytes (generate with `openssl rand -base64 32`). An
// empty string gives a Box that can neither seal nor open.
func Parse(s string) (*Box, error) {
	b := &Box{aeads: map[string]cipher.AEAD{}}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, enc, ok := strings.Cut(part, ":")
		if !ok || !keyIDPattern().MatchString(id) {
			return nil, errors.New("encryption key must read ID:BASE64 with an ID of letters, digits, - and _")
		}
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			raw, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(enc, "="))
		}
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("encryption key %q must be 32 bytes in base64", id)
		}
		if _, dup := b.aeads[id]; dup {
			return nil, fmt.Errorf("encryption key %q listed twice", id)
		}
		blk, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("encryption key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(blk)
		if err != nil {
			return nil, fmt.Errorf("encryption key %q: %w", id, err)
		}
		b.aeads[id] = aead
		if b.current == "" {
			b.current = id
		}
	}
	return b, nil
}

// Configured reports whether the Box can seal.
func (b *Box) Configured() bool { return b != nil && b.current != "" }

// CurrentKeyID names the key that seals.
func (b *Box) CurrentKeyID() string {
	if b == nil {
		return ""
	}
	return b.current
}

// Seal encrypts plaintext under the current key. The empty string seals to
// the empty string (nothing stored).
func (b *Box) Seal(plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	if !b.Configured() {
		return "", ErrNoKey
	}
	aead := b.aeads[b.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	sealed := aead.Seal(nonce, nonce, []byte(plaintext), []byte(prefix+b.current))
	return prefix + b.current + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Open decrypts a ciphertext from Seal. The empty string opens to the empty
// string.
func (b *Box) Open(ciphertext string) (string, error) {
	if ciphertext == "" {
		return "", nil
	}
	id, aead, body, err := b.parse(ciphertext)
	if err != nil {
		return "", err
	}
	if len(body) < aead.NonceSize() {
		return "", ErrCorrupt
	}
	plain, err := aead.Open(nil, body[:aead.NonceSize()], body[aead.NonceSize():], []byte(prefix+id))
	if err != nil {
		return "", ErrCorrupt
	}
	return string(plain), nil
}

// KeyID names the key a ciphertext was sealed under ("" for the empty
// ciphertext).
func KeyID(ciphertext string) string {
	rest, ok := strings.CutPrefix(ciphertext, prefix)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, ":")
	return id
}

// Reseal re-encrypts a ciphertext under the current key; changed is false
// when it already was.
func (b *Box) Reseal(ciphertext string) (out string, changed bool, err error) {
	if ciphertext == "" || KeyID(ciphertext) == b.CurrentKeyID() {
		return ciphertext, false, nil
	}
	plain, err := b.Open(ciphertext)
	if err != nil {
		return "", false, err
	}
	out, err = b.Seal(plain)
	return out, err == nil, err
}

// Sealed reports whether a stored value is a ciphertext from Seal.
func Sealed(stored string) bool { return strings.HasPrefix(stored, prefix) }

// SealIfConfigured is Seal where a key is configured, and returns plaintext
// as is where none is: for credentials that worked before encryption
// existed (Slack incoming-webhook URLs), which a deployment without a key
// must still be able to set. `leakwatch secrets reseal` seals them once a
// key is configured.
func (b *Box) SealIfConfigured(plaintext string) (string, error) {
	if !b.Configured() {
		return plaintext, nil
	}
	return b.Seal(plaintext)
}

// OpenStored opens a value stored by SealIfConfigured: a ciphertext is
// opened, anything else is plaintext stored without a key.
func (b *Box) OpenStored(stored string) (string, error) {
	if !Sealed(stored) {
		return stored, nil
	}
	return b.Open(stored)
}

// ResealStored re-encrypts a value stored by SealIfConfigured under the
// current key, sealing it if it was stored in plaintext; changed is false
// when it already was sealed under the current key.
func (b *Box) ResealStored(stored string) (out string, changed bool, err error) {
	if stored == "" || Sealed(stored) {
		return b.Reseal(stored)
	}
	if out, err = b.Seal(stored); err != nil {
		return "", false, err
	}
	return out, true, nil
}

func (b *Box) parse(ciphertext string) (string, cipher.AEAD, []byte, error) {
	rest, ok := strings.CutPrefix(ciphertext, prefix)
	if !ok {
		return "", nil, nil, ErrCorrupt
	}
	id, enc, ok := strings.Cut(rest, ":")
	if !ok {
		return "", nil, nil, ErrCorrupt
	}
	if b == nil {
		return "", nil, nil, ErrNoKey
	}
	aead, ok := b.aeads[id]
	if !ok {
		return "", nil, nil, fmt.Errorf("key %q: %w", id, ErrNoKey)
	}
	body, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		return "", nil, nil, ErrCorrupt
	}
	return id, aead, body, nil
}

// Hint is the end of a secret, for display ("…abcd"), or "" for short
// secrets, which would be given away.
func Hint(secret string) string {
	if len(secret) < 16 {
		return ""
	}
	return "…" + secret[len(secret)-4:]
}
