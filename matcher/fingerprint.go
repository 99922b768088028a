package matcher

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is the prefix of every fingerprint line in the current format.
const Version = "lw1"

// MinSecretLen is the fewest bytes a secret may have after its public
// provider prefix. The prefilter reads a window of this many bytes.
const MinSecretLen = 8

// LongWindow is the prefilter window used for secrets with at least this many
// bytes after the provider prefix. Shorter secrets use an 8-byte window and
// are always weak.
const LongWindow = 16

// MaxSecretLen bounds a registered secret (or normalised PEM body). It also
// bounds the overlap ScanReader keeps between chunks.
const MaxSecretLen = 16 << 10

const (
	kindSecret   = iota // "s": any single-line secret
	kindPEM             // "pem": a PEM private key
	kindToken           // "t": a secret made only of token characters
	kindWord            // "w": any other ASCII single-line secret, window its first 8 bytes
	kindWordUTF8        // "u": the same with bytes outside ASCII
)

// wordKind reports whether the kind's window is the secret's first 8 bytes
// after the prefix, hashed to 40 bits (32 when short).
func wordKind(kind uint8) bool { return kind == kindWord || kind == kindWordUTF8 }

// winK is the odd multiplier of the window hash (the 64-bit golden ratio).
const winK = 0x9E3779B97F4A7C15

// Domain-separation strings hashed in front of the secret, so generic
// SHA-256 tables of leaked passwords do not apply to fingerprints.
const (
	domainSecret = "leakwatch:lw1:s\x00"
	domainPEM    = "leakwatch:lw1:pem\x00"
)

// Fingerprint is a parsed registered-secret fingerprint ("lw1:..." line).
// The zero value is not valid; obtain one from Compute or ParseFingerprint.
type Fingerprint struct {
	kind   uint8
	prefix string // public provider prefix, "" if none
	length int    // bytes in the secret (or the normalised PEM body)
	window uint64 // 40-bit (long) or 32-bit (short) window hash; 0 for PEM
	hash   [16]byte
}

type provider struct {
	prefix string
	name   string
}

// providers lists public token prefixes, longest first where one prefix
// begins another, so the first match wins.
var providers = []provider{
	{"github_pat_", "github"},
	{"ghp_", "github"}, {"gho_", "github"}, {"ghu_", "github"}, {"ghs_", "github"}, {"ghr_", "github"},
	{"xoxb-", "slack"}, {"xoxp-", "slack"}, {"xoxa-", "slack"}, {"xoxr-", "slack"}, {"xoxs-", "slack"},
	{"xoxe-", "slack"}, {"xapp-", "slack"},
	{"sk_live_", "stripe"}, {"rk_live_", "stripe"}, {"sk_test_", "stripe"}, {"rk_test_", "stripe"}, {"whsec_", "stripe"},
	{"glpat-", "gitlab"}, {"gldt-", "gitlab"}, {"glrt-", "gitlab"}, {"glptt-", "gitlab"},
	{"AKIA", "aws"}, {"ASIA", "aws"},
	{"AIza", "google"}, {"GOCSPX-", "google"},
	{"npm_", "npm"},
	{"SG.", "sendgrid"},
	{"sk-proj-", "openai"},
	{"sk-ant-", "anthropic"},
}

// prefixIndex maps a known prefix to its index in providers plus one.
var prefixIndex = func() map[string]uint8 {
	m := make(map[string]uint8, len(providers))
	for i, p := range providers {
		m[p.prefix] = uint8(i + 1)
	}
	return m
}()

// detectPrefix returns the known public prefix s starts with, or "".
func detectPrefix(s []byte) string {
	for _, p := range providers {
		if len(s) >= len(p.prefix) && string(s[:len(p.prefix)]) == p.prefix {
			return p.prefix
		}
	}
	return ""
}

func providerName(prefix string) string {
	if i := prefixIndex[prefix]; i > 0 {
		return providers[i-1].name
	}
	return ""
}

// String returns the canonical one-line text form. It round-trips through
// ParseFingerprint.
func (f Fingerprint) String() string {
	var b strings.Builder
	b.Grow(80)
	b.WriteString(Version)
	if f.kind == kindPEM {
		b.WriteString(":pem::")
		b.WriteString(strconv.Itoa(f.length))
		b.WriteString("::")
	} else {
		switch f.kind {
		case kindToken:
			b.WriteString(":t:")
		case kindWord:
			b.WriteString(":w:")
		case kindWordUTF8:
			b.WriteString(":u:")
		default:
			b.WriteString(":s:")
		}
		b.WriteString(f.prefix)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f.length))
		b.WriteByte(':')
		var w [8]byte
		binary.BigEndian.PutUint64(w[:], f.window)
		if f.long() {
			b.WriteString(hex.EncodeToString(w[3:]))
		} else {
			b.WriteString(hex.EncodeToString(w[4:]))
		}
		b.WriteByte(':')
	}
	b.WriteString(hex.EncodeToString(f.hash[:]))
	return b.String()
}

// Provider returns the provider named by the fingerprint's public prefix
// ("aws", "github", "slack", ...), "pem" for a PEM private key, or "" when
// the secret has no known prefix.
func (f Fingerprint) Provider() string {
	if f.kind == kindPEM {
		return "pem"
	}
	return providerName(f.prefix)
}

// Prefix returns the public provider prefix held in the fingerprint, or "".
func (f Fingerprint) Prefix() string { return f.prefix }

// Slow reports whether the fingerprint is a long kind "s" one, made before
// kind "w": while a Set holds any, every scan hashes 16 bytes at every
// offset as well, about half as much again as passwords otherwise cost.
// Fingerprinting the secret again gives kind "w".
func (f Fingerprint) Slow() bool { return f.kind == kindSecret && f.long() }

// Len returns the length in bytes of the secret (for a PEM key, of its
// normalised base64 body).
func (f Fingerprint) Len() int { return f.length }

// long reports whether the secret uses the 16-byte prefilter window.
func (f Fingerprint) long() bool { return f.length-len(f.prefix) >= LongWindow }

// ParseFingerprint parses the canonical text form produced by String. It is
// strict: any deviation from the canonical form is an error. The error never
// echoes the input, which might be a pasted secret.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	if !strings.HasPrefix(s, Version+":") {
		if LooksLikeSecret(s) {
			return f, errors.New("parse fingerprint: input looks like a plaintext secret; register its fingerprint (leakwatch fingerprint), never the secret")
		}
		return f, fmt.Errorf("parse fingerprint: must start with %q", Version+":")
	}
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return f, fmt.Errorf("parse fingerprint: want 6 colon-separated fields, got %d", len(parts))
	}
	kind, prefix, lenStr, win, hashStr := parts[1], parts[2], parts[3], parts[4], parts[5]
	n, err := strconv.Atoi(lenStr)
	if err != nil || n <= 0 || strconv.Itoa(n) != lenStr {
		return f, errors.New("parse fingerprint: length field must be a positive decimal without leading zeros")
	}
	if n > MaxSecretLen {
		return f, fmt.Errorf("parse fingerprint: length %d exceeds the maximum %d", n, MaxSecretLen)
	}
	f.length = n
	if err := parseHex(hashStr, f.hash[:]); err != nil {
		return f, fmt.Errorf("parse fingerprint: hash field: %w", err)
	}
	switch kind {
	case "pem":
		if prefix != "" || win != "" {
			return f, errors.New("parse fingerprint: pem fingerprints have empty prefix and window fields")
		}
		if n < minPEMBody {
			return f, fmt.Errorf("parse fingerprint: pem body length %d is below the minimum %d", n, minPEMBody)
		}
		f.kind = kindPEM
	case "s", "t", "w", "u":
		if prefix != "" && prefixIndex[prefix] == 0 {
			return f, errors.New("parse fingerprint: unknown provider prefix")
		}
		switch kind {
		case "s":
			f.kind = kindSecret
		case "w":
			f.kind = kindWord
		case "u":
			f.kind = kindWordUTF8
		case "t":
			f.kind = kindToken
			if n-len(prefix) < LongWindow {
				return f, fmt.Errorf("parse fingerprint: kind t needs at least %d bytes after the prefix", LongWindow)
			}
		}
		f.prefix = prefix
		if n-len(prefix) < MinSecretLen {
			return f, fmt.Errorf("parse fingerprint: length %d leaves fewer than %d bytes after the prefix", n, MinSecretLen)
		}
		want := 8
		if f.long() {
			want = 10
		}
		if len(win) != want {
			return f, fmt.Errorf("parse fingerprint: window field must be %d lowercase hex digits for length %d", want, n)
		}
		var w [8]byte
		if err := parseHex(win, w[8-want/2:]); err != nil {
			return f, fmt.Errorf("parse fingerprint: window field: %w", err)
		}
		f.window = binary.BigEndian.Uint64(w[:])
	default:
		return f, errors.New("parse fingerprint: kind field must be \"w\", \"u\", \"s\", \"t\" or \"pem\"")
	}
	return f, nil
}

// parseHex decodes exactly len(dst) bytes of lowercase hex.
func parseHex(s string, dst []byte) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("want %d hex digits, got %d", 2*len(dst), len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errors.New("want lowercase hex digits")
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// le64 loads 8 bytes little-endian; b must hold at least 8.
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// windowLong is the 40-bit prefilter hash of a 16-byte window.
func windowLong(w []byte) uint64 {
	return ((le64(w) * winK) ^ ((le64(w[8:]) * winK) >> 1)) >> 24
}

// windowWord is the window hash of a kind "w" or "u" secret: the top 40
// bits (long) or 32 bits (short) of the product of its first 8 bytes after
// the prefix. The short form is also that of a short kind "s" secret.
func windowWord(w []byte, long bool) uint64 {
	if long {
		return (le64(w) * winK) >> 24
	}
	return (le64(w) * winK) >> 32
}
