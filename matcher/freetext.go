package matcher

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrPlaintextSecret is returned for free text (names, tags, notes,
// reasons, reviews) that holds what looks like a plaintext secret. Callers
// refuse the whole write: Leakwatch never stores a customer's secret.
var ErrPlaintextSecret = errors.New("looks like it holds a plaintext secret; never send the secret")

// CheckFreeText returns an error wrapping ErrPlaintextSecret, naming field
// but never echoing the value, when v holds something that looks like a
// plaintext secret.
func CheckFreeText(field, v string) error {
	if ContainsSecret(v) {
		return fmt.Errorf("%s %w", field, ErrPlaintextSecret)
	}
	return nil
}

// ContainsSecret reports whether free text holds something that looks like
// a plaintext secret: a token with a known provider prefix, a PEM private
// key, a JWT, a URL carrying a password, or a long high-entropy word that is
// not a URL or path. Names such as "deploy-bot" must pass, so short words
// are never suspect.
func ContainsSecret(s string) bool {
	if strings.Contains(s, "PRIVATE KEY-----") {
		return true
	}
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" \t\r\n\"'`=,;()[]{}<>", r) }) {
		if urlWithPassword(w) || looksLikeJWT(w) {
			return true
		}
		if len(w) < MinSecretLen+4 || !LooksLikeSecret(w) {
			continue
		}
		if fp, err := Compute([]byte(w), ComputeOpts{AllowWeak: true}); err == nil && fp.Prefix() != "" {
			return true
		}
		if len(w) >= 24 && !strings.ContainsAny(w, "/.:@") && EstimateBits([]byte(w)) >= 100 {
			return true
		}
		if base64Secret(w) {
			return true
		}
	}
	return false
}

// base64Secret reports a long standard-base64 word mixing upper case, lower
// case and digits, such as an AWS secret access key
// ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), whose slashes would
// otherwise pass it for a path. Paths with digits and capitals in a
// 30-character run free of '-', '_' and '.' are rare.
func base64Secret(w string) bool {
	if len(w) < 30 || strings.HasPrefix(w, "/") || strings.Contains(w, "//") {
		return false
	}
	var lower, upper, digit bool
	for _, c := range w {
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		case c == '+' || c == '/' || c == '=':
		default:
			return false
		}
	}
	return lower && upper && digit && EstimateBits([]byte(w)) >= 100
}

// urlWithPassword reports a URL whose userinfo carries a password
// ("https://deploy:hunter2@host/").
func urlWithPassword(w string) bool {
	i := strings.Index(w, "://")
	if i < 0 || !strings.Contains(w[i:], "@") {
		return false
	}
	u, err := url.Parse(w)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// looksLikeJWT reports a JSON Web Token: three dot-separated base64url
// parts, the first an encoded JSON object ("eyJ").
func looksLikeJWT(w string) bool {
	if !strings.HasPrefix(w, "eyJ") || len(w) < 30 {
		return false
	}
	parts := strings.Split(w, ".")
	return len(parts) == 3 && len(parts[1]) >= 4
}
