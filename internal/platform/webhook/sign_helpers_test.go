package webhook

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
)

// ParsePublicKey reads "whpk_…", as a receiver does with the keys
// published at /.well-known/leakwatch/webhook-keys; the tests check the
// round trip of PublicString.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	raw, ok := strings.CutPrefix(strings.TrimSpace(s), publicKeyPrefix)
	if !ok {
		return nil, errors.New("public key must start with " + publicKeyPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("public key must be 32 bytes of base64")
	}
	return ed25519.PublicKey(b), nil
}
