package matcher

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// WeakBits is the estimated entropy, in bits, below which Compute refuses a
// secret unless ComputeOpts.AllowWeak is set.
const WeakBits = 64

// minPEMBody is the shortest normalised PEM body accepted.
const minPEMBody = 64

// ErrWeakSecret is wrapped in the error Compute returns for a secret that a
// hash cannot protect: too short or too predictable.
var ErrWeakSecret = errors.New("weak secret")

// ComputeOpts tunes Compute.
type ComputeOpts struct {
	// AllowWeak registers secrets that fail the strength check.
	AllowWeak bool
}

// Compute returns the fingerprint of secret. A PEM private key (text holding
// "-----BEGIN ... PRIVATE KEY-----") is normalised to its base64 body first.
// Errors never contain the secret.
func Compute(secret []byte, opts ComputeOpts) (Fingerprint, error) {
	if isPEMKey(secret) {
		body, ok := normalisePEM(secret)
		if !ok {
			return Fingerprint{}, errors.New("compute fingerprint: PEM private key has no END line or no base64 body")
		}
		if len(body) < minPEMBody || len(body) > MaxSecretLen {
			return Fingerprint{}, fmt.Errorf("compute fingerprint: PEM body of %d bytes is outside %d..%d", len(body), minPEMBody, MaxSecretLen)
		}
		return Fingerprint{kind: kindPEM, length: len(body), hash: hashPEM(body)}, nil
	}
	if len(secret) == 0 {
		return Fingerprint{}, errors.New("compute fingerprint: empty secret")
	}
	if len(secret) > MaxSecretLen {
		return Fingerprint{}, fmt.Errorf("compute fingerprint: secret of %d bytes exceeds the maximum %d", len(secret), MaxSecretLen)
	}
	if bytes.ContainsAny(secret, "\r\n") {
		return Fingerprint{}, errors.New("compute fingerprint: secret spans several lines (only PEM private keys may)")
	}
	if isSpace(secret[0]) || isSpace(secret[len(secret)-1]) {
		return Fingerprint{}, errors.New("compute fingerprint: secret has leading or trailing whitespace; trim it")
	}
	prefix := detectPrefix(secret)
	rest := secret[len(prefix):]
	if len(rest) < MinSecretLen {
		return Fingerprint{}, fmt.Errorf("compute fingerprint: %w: %d bytes after the provider prefix, need at least %d", ErrWeakSecret, len(rest), MinSecretLen)
	}
	if !opts.AllowWeak {
		if len(rest) < LongWindow {
			return Fingerprint{}, fmt.Errorf("compute fingerprint: %w: %d bytes after the provider prefix, need %d (or allow weak secrets)", ErrWeakSecret, len(rest), LongWindow)
		}
		if bits, bar := strengthOf(prefix, rest); bits < bar {
			return Fingerprint{}, fmt.Errorf("compute fingerprint: %w: about %.0f bits of entropy, need %.0f (or allow weak secrets)", ErrWeakSecret, bits, bar)
		}
	}
	f := Fingerprint{kind: kindSecret, prefix: prefix, length: len(secret), hash: hashSecret(secret)}
	switch long := len(rest) >= LongWindow; {
	case long && isTokenRun(secret):
		f.kind, f.window = kindToken, windowLong(rest)
	case isASCII(secret):
		f.kind, f.window = kindWord, windowWord(rest, long)
	default:
		f.kind, f.window = kindWordUTF8, windowWord(rest, long)
	}
	return f, nil
}

func hashSecret(secret []byte) [16]byte { return hashWith(domainSecret, secret) }
func hashPEM(body []byte) [16]byte      { return hashWith(domainPEM, body) }

func hashWith(domain string, b []byte) [16]byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(b)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var out [16]byte
	copy(out[:], sum[:16])
	return out
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// weakWords are fragments that make a secret predictable; each occurrence is
// credited with a few bits instead of the per-character estimate.
var weakWords = []string{
	"password", "passwd", "secret", "admin", "changeme", "qwerty", "letmein", "welcome",
	"example", "default", "login", "token", "dragon", "master", "monkey", "iloveyou",
	"sunshine", "princess", "football", "baseball", "hello", "summer", "winter", "test",
	"123456", "abc123", "asdf", "root", "user", "pass", "1234", "abcd", "xxxx", "dummy", "sample",
}

// EstimateBits estimates the entropy of s in bits from its character classes,
// discounting what makes a human-chosen string guessable in the way zxcvbn
// does: dictionary fragments, repeated fragments, runs like "abcd"/"1234",
// keyboard walks like "qwerty"/"1qaz2wsx", and a skewed character
// distribution. Each discount needs more than chance would give a random
// string of the same alphabet, so random keys of the supported formats (AWS
// key IDs at 80 bits, hex keys, UUIDs) are never refused: see
// TestStrengthCheckAcceptsRandomKeys.
func EstimateBits(s []byte) float64 { return estimateBits(s, 0) }

// base32Alphabet is the alphabet of AWS access key IDs after AKIA/ASIA.
const base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// machineFormatSlack is how far below WeakBits a secret of a machine-made
// format may estimate. Such a key has the entropy its generator gave it (an
// AWS key ID: 80 bits), however it looks; the check is there to refuse
// placeholders ("AKIAIOSFODNN7EXAMPLE", "AKIAXXXXXXXXXXXXXXXX"), which land
// far lower. With 16 bits to spare over the bar, chance patterns (a "USER",
// a walk "IOKJ", a run "FFF") refused 27 in a million random AWS key IDs.
const machineFormatSlack = 12

// strengthOf estimates the bits of rest, a secret after its provider
// prefix, and the bar it must pass. A format whose alphabet is known is
// measured by it: an AWS key ID drawn from base32 often lacks digits by
// chance, and the class guess would then take 4.7 bits a character where
// there are 5.
func strengthOf(prefix string, rest []byte) (bits, bar float64) {
	if (prefix == "AKIA" || prefix == "ASIA") && len(rest) == 16 && len(bytes.Trim(rest, base32Alphabet)) == 0 {
		return estimateBits(rest, 32), WeakBits - machineFormatSlack
	}
	return estimateBits(rest, 0), WeakBits
}

// estimateBits is EstimateBits with the alphabet's size given (0: guessed
// from the character classes present).
func estimateBits(s []byte, alphabet float64) float64 {
	if len(s) == 0 {
		return 0
	}
	var lower, upper, digit, other, high bool
	hexOnly := true
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
			if c > 'f' {
				hexOnly = false
			}
		case c >= 'A' && c <= 'Z':
			upper = true
			if c > 'F' {
				hexOnly = false
			}
		case c >= '0' && c <= '9':
			digit = true
		case c >= 0x80:
			high = true
			hexOnly = false
		default:
			other = true
			hexOnly = false
		}
	}
	alpha := alphabet
	if alpha > 0 {
		// known
	} else if hexOnly && !(lower && upper) {
		alpha = 16
		if !lower && !upper {
			alpha = 10
		}
	} else {
		if lower {
			alpha += 26
		}
		if upper {
			alpha += 26
		}
		if digit {
			alpha += 10
		}
		if other {
			alpha += 33
		}
		if high {
			alpha += 64
		}
	}
	perChar := math.Log2(alpha)
	covered := make([]bool, len(s))
	// ASCII-only lowering keeps byte positions aligned with s.
	lb := make([]byte, len(s))
	for i, c := range s {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lb[i] = c
	}
	lowered := string(lb)
	bits := 0.0
	for _, w := range weakWords {
		for from := 0; ; {
			i := strings.Index(lowered[from:], w)
			if i < 0 {
				break
			}
			i += from
			fresh := false
			for j := i; j < i+len(w); j++ {
				if !covered[j] {
					fresh = true
				}
				covered[j] = true
			}
			if fresh {
				bits += 6
			}
			from = i + 1
		}
	}
	// A repeated fragment of five or more characters ("Summer2024!" twice)
	// adds almost nothing the second time. Random text repeats a 5-gram
	// about once in 500,000 samples of 16 base32 characters (a 4-gram: once
	// in 13,000, too often to discount).
	for i := 5; i+5 <= len(lowered); i++ {
		if covered[i] || !strings.Contains(lowered[:i], lowered[i:i+5]) {
			continue
		}
		for j := i; j < i+5; j++ {
			covered[j] = true
		}
		bits += 2
	}
	walk := keyboardWalks(lb)
	for i, c := range s {
		if covered[i] {
			continue
		}
		// A character that continues a run of constant step -1, 0 or +1
		// ("abc", "777", "cba") adds a bit once the run is three long. One
		// such step alone is chance (1 in 11 pairs of base32): discounting
		// it refused 1 in 110 random AWS key IDs.
		if i >= 2 {
			d := int(c) - int(s[i-1])
			if (d == 0 || d == 1 || d == -1) && int(s[i-1])-int(s[i-2]) == d {
				bits++
				continue
			}
		}
		if walk[i] {
			bits += math.Log2(6) // a key next to the previous one
			continue
		}
		bits += perChar
	}
	// A skewed distribution (few distinct characters) caps the estimate.
	var counts [256]int
	for _, c := range s {
		counts[c]++
	}
	h := 0.0
	n := float64(len(s))
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	if cap := 1.6 * h * n; cap < bits {
		bits = cap
	}
	return bits
}

// keyboardRows is the QWERTY layout, each row shifted half a key right of
// the one above, as on a keyboard.
var keyboardRows = [...]string{"1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./"}

// keyboardAt maps a lower-case key to its row and column (row+1; 0: none).
var keyboardAt = func() (at [256][2]int8) {
	for r, row := range keyboardRows {
		for c := 0; c < len(row); c++ {
			at[row[c]] = [2]int8{int8(r + 1), int8(c)}
		}
	}
	return at
}()

// keyboardNeighbours reports whether keys a and b touch on the keyboard:
// beside each other, or diagonally on the row above or below.
func keyboardNeighbours(a, b byte) bool {
	pa, pb := keyboardAt[a], keyboardAt[b]
	if pa[0] == 0 || pb[0] == 0 || a == b {
		return false
	}
	dr, dc := pb[0]-pa[0], pb[1]-pa[1]
	switch dr {
	case 0:
		return dc == 1 || dc == -1
	case 1: // the row below sits half a key to the right
		return dc == 0 || dc == -1
	case -1:
		return dc == 0 || dc == 1
	}
	return false
}

// keyboardWalks marks the characters of lowered (ASCII lower case) that
// continue a walk over neighbouring keys ("qwerty", "1qaz2wsx") of at least
// four keys, from the walk's third key on. Shorter walks are chance: about
// one pair in six of random alphanumerics are neighbours.
func keyboardWalks(lowered []byte) []bool {
	marked := make([]bool, len(lowered))
	for start := 0; start < len(lowered); {
		end := start + 1
		for end < len(lowered) && keyboardNeighbours(lowered[end-1], lowered[end]) {
			end++
		}
		if end-start >= 4 {
			for j := start + 2; j < end; j++ {
				marked[j] = true
			}
		}
		start = end
	}
	return marked
}

// LooksLikeSecret reports whether s looks like a plaintext secret rather than
// a fingerprint: a PEM private key, a token with a known provider prefix, or
// a single high-entropy word. The registry uses it to refuse plaintext.
func LooksLikeSecret(s string) bool {
	if strings.HasPrefix(s, Version+":") {
		return false
	}
	b := []byte(s)
	if isPEMKey(b) {
		return true
	}
	t := bytes.TrimSpace(b)
	if p := detectPrefix(t); p != "" && len(t)-len(p) >= MinSecretLen {
		return true
	}
	if len(t) < LongWindow || bytes.ContainsAny(t, " \t\r\n") {
		return false
	}
	// Names and words use one letter case and no digits; keys mix classes.
	var lower, upper, digit int
	for _, c := range t {
		switch {
		case c >= 'a' && c <= 'z':
			lower = 1
		case c >= 'A' && c <= 'Z':
			upper = 1
		case c >= '0' && c <= '9':
			digit = 1
		}
	}
	return lower+upper+digit >= 2 && EstimateBits(t) >= WeakBits
}

var (
	pemBegin = []byte("-----BEGIN")
	pemEnd   = []byte("-----END")
	pemTail  = []byte("PRIVATE KEY-----")
)

// isPEMKey reports whether b holds a PEM private key header.
func isPEMKey(b []byte) bool {
	i := bytes.Index(b, pemBegin)
	if i < 0 {
		return false
	}
	j := bytes.IndexByte(b[i:], '\n')
	line := b[i:]
	if j >= 0 {
		line = b[i : i+j]
	}
	if k := bytes.Index(line, []byte(`\n`)); k >= 0 {
		line = line[:k]
	}
	return bytes.Contains(line, pemTail)
}

// normalisePEM returns the base64 body of the first PEM private key block in
// b: everything between the BEGIN and END lines with whitespace, literal
// \n/\r/\t escapes, diff/quote line decorations and RFC 1421 headers removed.
func normalisePEM(b []byte) ([]byte, bool) {
	body, _, _, ok := pemBlock(b, 0)
	return body, ok
}

// pemBlock finds the first private-key PEM block in b at or after from. It
// returns the normalised body and the block's span [start, end).
func pemBlock(b []byte, from int) (body []byte, start, end int, ok bool) {
	for from < len(b) {
		i := bytes.Index(b[from:], pemBegin)
		if i < 0 {
			return nil, 0, 0, false
		}
		start = from + i
		// The header line ends at the second "-----".
		k := bytes.Index(b[start+len(pemBegin):], []byte("-----"))
		if k < 0 || k > 64 {
			from = start + len(pemBegin)
			continue
		}
		hdrStop := start + len(pemBegin) + k + 5
		if !bytes.HasSuffix(b[start:hdrStop], pemTail) {
			from = start + len(pemBegin)
			continue
		}
		e := bytes.Index(b[hdrStop:], pemEnd)
		if e < 0 || e > MaxSecretLen*2 {
			return nil, start, len(b), false
		}
		bodyRaw := b[hdrStop : hdrStop+e]
		end = hdrStop + e + len(pemEnd)
		if t := bytes.Index(b[end:], []byte("-----")); t >= 0 && t <= 64 {
			end += t + 5
		}
		return cleanPEMBody(bodyRaw), start, end, true
	}
	return nil, 0, 0, false
}

// cleanPEMBody keeps only base64 characters of the body, dropping line
// breaks in any form and lines that are RFC 1421 headers ("Proc-Type: ...").
func cleanPEMBody(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	lineStart := true
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) && (raw[i+1] == 'n' || raw[i+1] == 'r' || raw[i+1] == 't') {
			i++
			lineStart = raw[i] != 't'
			continue
		}
		if c == '\n' || c == '\r' {
			lineStart = true
			continue
		}
		if lineStart {
			// Skip a header line (contains ':' before its end).
			j := i
			for j < len(raw) && raw[j] != '\n' && raw[j] != '\\' {
				j++
			}
			if bytes.IndexByte(raw[i:j], ':') >= 0 {
				i = j - 1
				continue
			}
			lineStart = false
			// Diff and quote decorations at the start of a line: "+", ">", "#",
			// "//" followed by optional spaces. A '+' is also a base64 digit, so
			// it is only dropped when the line is one longer than a multiple of 4.
			if c == '>' || c == '#' {
				continue
			}
			if c == '+' && isDiffPlus(raw[i:]) {
				continue
			}
		}
		if isB64(c) || c == '=' {
			out = append(out, c)
		}
	}
	return out
}

// isDiffPlus reports whether a '+' starting line l is a diff marker rather
// than base64: the rest of the line's base64 length is a multiple of 4 with
// it removed and not with it kept.
func isDiffPlus(l []byte) bool {
	n := 0
	for _, c := range l {
		if c == '\n' || c == '\r' || c == '\\' {
			break
		}
		if isB64(c) || c == '=' {
			n++
		}
	}
	return n%4 == 1
}

// tokenByte marks the token characters: letters, digits and "+-./=_~".
var tokenByte = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c], t[c+'a'-'A'] = true, true
	}
	for _, c := range "0123456789+-./=_~" {
		t[c] = true
	}
	return t
}()

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isTokenRun(b []byte) bool {
	for _, c := range b {
		if !tokenByte[c] {
			return false
		}
	}
	return true
}

func isB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}
