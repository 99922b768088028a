package matcher

import (
	"regexp"
	"strings"
)

// Previews show the line around a registered key, and that line often holds
// other secrets: the AWS secret access key after its key ID, a password in a
// URL, a bearer token. Those are not registered, so no hit masks them; the
// rules below do, erring towards masking (a preview loses some context, a
// leak monitor never copies a secret).

// credentialValue finds values assigned to names that say they are secret
// ("password=…", "client_secret: …", "api-key=…"), whatever their entropy.
var credentialValue = regexp.MustCompile(`(?i)(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?|auth)[a-z_-]*["']?\s*[:=]\s*["']?([^\s"'&;,<>` + "`" + `]{3,})`)

// authScheme finds credentials after an HTTP authorization scheme
// ("Authorization: Bearer …", "Basic …").
var authScheme = regexp.MustCompile(`(?i)\b(?:bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{8,})`)

// urlPassword finds the password of credentials in a URL
// ("https://deploy:hunter2@git.example/").
var urlPassword = regexp.MustCompile(`://[^/\s:@]*:([^@\s/]+)@`)

// maskPreview masks, in one side of a preview, every value the rules above
// find and every token that looks random. cutStart and cutEnd say the text
// was cut there from a longer line: a token touching a cut may be the tail
// or head of a secret, so a lower bar masks it.
func maskPreview(s string, cutStart, cutEnd bool) string {
	b := []byte(s)
	mask := make([]bool, len(b))
	for _, re := range []*regexp.Regexp{credentialValue, authScheme, urlPassword} {
		for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
			if m[2] < 0 || strings.Contains(s[m[2]:m[3]], redaction) || re == credentialValue && notAValue(s[m[2]:m[3]]) {
				continue
			}
			for i := m[2]; i < m[3]; i++ {
				mask[i] = true
			}
		}
	}
	for i := 0; i < len(b); {
		if !previewTokenByte(b[i]) {
			i++
			continue
		}
		j := i
		for j < len(b) && previewTokenByte(b[j]) {
			j++
		}
		for j < len(b) && b[j] == '=' { // base64 padding
			j++
		}
		if randomToken(s[i:j], (cutStart && i == 0) || (cutEnd && j == len(b))) {
			for k := i; k < j; k++ {
				mask[k] = true
			}
		}
		i = j
	}
	var out strings.Builder
	for i := 0; i < len(b); {
		if !mask[i] {
			out.WriteByte(b[i])
			i++
			continue
		}
		for i < len(b) && mask[i] {
			i++
		}
		out.WriteString(redaction)
	}
	return out.String()
}

// codeReference matches what code assigns to a secret's name instead of
// the secret: a dotted identifier or call (process.env.TOKEN, os.getenv(…)).
var codeReference = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)+(?:\(.*)?$|^[A-Za-z_$][A-Za-z0-9_$]*\(`)

// notAValue reports a credentialValue match that is not a secret: a code
// reference, a placeholder (${X}, %s, <x>), a PEM armour line, or the
// authorization scheme itself (authScheme masks what follows it).
func notAValue(v string) bool {
	switch strings.ToLower(v) {
	case "bearer", "basic", "digest", "token", "null", "none", "true", "false", "undefined", "nil":
		return true
	}
	return strings.HasPrefix(v, "-----") || strings.ContainsAny(v[:1], "${%<*") || codeReference.MatchString(v)
}

// previewTokenByte reports bytes that make up tokens: base64 (standard and URL
// alphabets), hex, and the dots of JWTs.
func previewTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '_' || c == '-' || c == '.' || c == '~'
}

// randomToken reports a token that looks generated rather than written: a
// long run mixing letter cases and digits with high estimated entropy, a
// long hex string, or a JWT. A token at a cut needs only to be mixed.
func randomToken(t string, atCut bool) bool {
	if strings.HasPrefix(t, "eyJ") && strings.Count(t, ".") == 2 && len(t) >= 20 {
		return true // JWT
	}
	// Paths and host names are split into their parts: a random part is
	// masked, "github.com/acme/deploy-tools" is not.
	var lower, upper, digit, hex int
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z':
			lower = 1
			if c <= 'f' {
				hex++
			}
		case c >= 'A' && c <= 'Z':
			upper = 1
		case c >= '0' && c <= '9':
			digit = 1
			hex++
		}
	}
	if atCut {
		return len(t) >= 6 && lower+upper+digit >= 2
	}
	if len(t) >= 32 && hex == len(t) && digit == 1 {
		return true // hex digest or key
	}
	// Identifiers (RefreshAccessToken, AWS_SECRET_ACCESS_KEY) have no
	// digits; a generated token of 16 or more characters almost always has.
	if len(t) < 16 || digit == 0 || lower+upper == 0 {
		return false
	}
	for _, part := range strings.FieldsFunc(t, func(r rune) bool { return r == '/' || r == '.' }) {
		if len(part) >= 16 && EstimateBits([]byte(part)) >= 64 {
			return true
		}
	}
	return len(t) >= 30 && !strings.ContainsAny(t, ".") && EstimateBits([]byte(t)) >= 100
}
