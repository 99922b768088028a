package matcher

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// Test secrets: fake, high-entropy, provider-shaped.
const (
	ghToken  = "ghp_R4nd0mT0kenV4lue9xQ2ZpL8mN3bV7cX1zK5"
	awsKey   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8vB3nH2q"
	slackTok = "xoxb-2048739102-8837465012-Qm7VzR2pLk9XwT4nB6yH1cJd"
	plainKey = "9f8Kq2LzX7vB4nM1pR6tY3wC5hJ0dG8s"
	// Passwords (kind "w"): one long, one short enough for the 32-bit
	// window (registered only with AllowWeak), a passphrase, a short one in
	// lowercase, one after a provider prefix (not a token: it holds '!'),
	// and one with bytes outside ASCII (kind "u").
	longPw       = "Tr0ub4dor&3 horse!Battery#9"
	shortPw      = "Wint3r!2024#q"
	phrasePw     = "correct horse!battery staple"
	lowerShortPw = "winter!2024#q"
	prefixedPw   = "ghp_R4nd0mT0kenV4lue9xQ2!"
	utf8Pw       = "pässwörd-Zq8Wm3Xr7Tn2"
)

// legacyS returns the fingerprint Compute gave secret before kind "w"
// existed (for a password, kind "s" with a 16-byte window), as registries
// stored then still hold.
func legacyS(t testing.TB, secret string) Fingerprint {
	t.Helper()
	f := mustComputeWeak(t, secret)
	if !wordKind(f.kind) {
		return f // tokens are as they were
	}
	rest := []byte(secret)[len(f.prefix):]
	f.kind, f.window = kindSecret, windowWord(rest, false)
	if f.long() {
		f.window = windowLong(rest)
	}
	return f
}

func mustComputeWeak(t testing.TB, s string) Fingerprint {
	t.Helper()
	f, err := Compute([]byte(s), ComputeOpts{AllowWeak: true})
	if err != nil {
		t.Fatalf("compute: %v", err)
	}
	return f
}

func mustCompute(t testing.TB, s string) Fingerprint {
	t.Helper()
	f, err := Compute([]byte(s), ComputeOpts{})
	if err != nil {
		t.Fatalf("compute: %v", err)
	}
	return f
}

func testSet(t testing.TB, secrets ...string) *Set {
	t.Helper()
	var fps []Fingerprint
	for _, s := range secrets {
		fps = append(fps, mustCompute(t, s))
	}
	return NewSet(fps)
}

func utf16le(s string, bom bool) string {
	var b []byte
	if bom {
		b = append(b, 0xff, 0xfe)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return string(b)
}

func utf16be(s string, bom bool) string {
	var b []byte
	if bom {
		b = append(b, 0xfe, 0xff)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.BigEndian.AppendUint16(b, u)
	}
	return string(b)
}

func jsonU(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

func wrap(s string, n int, nl string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + nl)
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

func TestScanContexts(t *testing.T) {
	t.Parallel()
	set := testSet(t, ghToken, awsKey, slackTok, plainKey)
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name     string
		doc      string
		secret   string
		encoding string
		line     int
		col      int
	}{
		{"bare", ghToken, ghToken, "plain", 1, 1},
		{"double quotes", `token = "` + ghToken + `"`, ghToken, "plain", 1, 10},
		{"single quotes", `token = '` + ghToken + `'`, ghToken, "plain", 1, 10},
		{"env", "A=1\nGITHUB_TOKEN=" + ghToken + "\n", ghToken, "plain", 2, 14},
		{"export", `export AWS_SECRET_ACCESS_KEY="` + awsKey + `"`, awsKey, "plain", 1, 31},
		{"yaml", "aws:\n  secret_access_key: " + awsKey + "\n", awsKey, "plain", 2, 22},
		{"json", `{"token":"` + slackTok + `"}`, slackTok, "plain", 1, 11},
		{"json newline escape before", `{"k":"a\n` + plainKey + `\tb"}`, plainKey, "plain", 1, 10},
		{"json tab escape before", `{"k":"\t` + plainKey + `"}`, plainKey, "plain", 1, 9},
		{"url userinfo", "https://user:" + plainKey + "@example.com/x", plainKey, "plain", 1, 14},
		{"query string", "https://x.test/a?access_token=" + ghToken + "&b=1", ghToken, "plain", 1, 31},
		{"crlf", "a\r\nTOKEN=" + ghToken + "\r\nb\r\n", ghToken, "plain", 2, 7},
		{"end of file without newline", "x\ny=" + ghToken, ghToken, "plain", 2, 3},
		{"diff plus line", "@@ -1,2 +1,3 @@\n a\n+token: " + ghToken + "\n", ghToken, "plain", 3, 9},
		{"xml attribute", `<add key="token" value="` + awsKey + `"/>`, awsKey, "plain", 1, 25},
		{"html entities", `<input value=&quot;` + plainKey + `&quot;>`, plainKey, "plain", 1, 20},
		{"markdown code", "Use `" + ghToken + "` here", ghToken, "plain", 1, 6},
		{"bearer header", "Authorization: Bearer " + slackTok, slackTok, "plain", 1, 23},
		{"list", "- " + awsKey + "\n", awsKey, "plain", 1, 3},
		{"glued to word", "prefix" + plainKey + "suffix", plainKey, "plain", 1, 7},
		{"non-ascii line", "clé → " + ghToken, ghToken, "plain", 1, 10},
		{"base64 alone", "data: " + b64([]byte(ghToken)), ghToken, "base64", 1, 7},
		{"base64 env file", "blob " + b64([]byte("A=1\nB=two\nGITHUB_TOKEN="+ghToken+"\nC=3\n")) + " end", ghToken, "base64", 1, 6},
		{"base64 wrapped 76", "x:\n" + wrap(b64([]byte(strings.Repeat("# comment line\n", 9)+"KEY="+awsKey+"\n")), 76, "\n") + "\n", awsKey, "base64", 2, 1},
		{"base64 wrapped 24", "x:\n" + wrap(b64([]byte(strings.Repeat("# comment line\n", 3)+"KEY="+awsKey+"\n")), 24, "\n") + "\n", awsKey, "base64", 2, 1},
		{"base64 wrapped crlf", wrap(b64([]byte(strings.Repeat("padding text ", 8)+"KEY="+awsKey+"\n")), 64, "\r\n"), awsKey, "base64", 1, 1},
		{"base64 url alphabet", "t=" + base64.RawURLEncoding.EncodeToString([]byte("\xff\xfe"+awsKey)), awsKey, "base64", 1, 3},
		{"kubernetes secret", "apiVersion: v1\nkind: Secret\ndata:\n  token: " + b64([]byte(slackTok)) + "\n", slackTok, "base64", 4, 10},
		{"basic auth", "Authorization: Basic " + b64([]byte("user:"+plainKey)), plainKey, "base64", 1, 22},
		{"base64 in json with escape before", `{"a":"\n` + b64([]byte(ghToken)) + `"}`, ghToken, "base64", 1, 9},
		{"url encoded", "u=" + url.QueryEscape("x/"+awsKey), awsKey, "url", 1, 7},
		{"url fully encoded", "p=" + strings.ToUpper(fmt.Sprintf("%%%x", ghToken[0])) + url.PathEscape(ghToken[1:]), ghToken, "url", 1, 3},
		{"json unicode escapes", `{"t":"` + jsonU(ghToken) + `"}`, ghToken, "json-escape", 1, 7},
		{"json escaped slash", `{"k":"` + strings.ReplaceAll(awsKey, "/", `\/`) + `"}`, awsKey, "json-escape", 1, 7},
		{"utf16le bom", utf16le("TOKEN="+ghToken+"\r\n", true), ghToken, "utf16le", 1, 15},
		{"utf16le no bom", utf16le("k: "+slackTok, false), slackTok, "utf16le", 1, 7},
		{"utf16be bom", utf16be("TOKEN="+ghToken+"\n", true), ghToken, "utf16be", 1, 15},
		{"utf16be no bom", utf16be("TOKEN="+ghToken+"\n", false), ghToken, "utf16be", 1, 13},
		{"utf16le mid-file line 3", "a\nb\n" + utf16le("x="+awsKey, false), awsKey, "utf16le", 3, 5},
		{"base64 of utf16", "v=" + b64([]byte(utf16le("secret="+awsKey, true))), awsKey, "base64+utf16le", 1, 3},
		{"url of base64", "q=" + url.QueryEscape(b64([]byte("tok "+ghToken+"\n"))), ghToken, "", 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := mustCompute(t, tt.secret).String()
			got := set.Scan([]byte(tt.doc))
			var match *Finding
			for i := range got {
				if got[i].Fingerprint == want {
					match = &got[i]
					break
				}
			}
			if match == nil {
				t.Fatalf("secret not found; findings: %+v", got)
			}
			if tt.encoding != "" && match.Encoding != tt.encoding {
				t.Errorf("encoding = %q, want %q", match.Encoding, tt.encoding)
			}
			if match.Line != tt.line || match.Column != tt.col {
				t.Errorf("position = %d:%d, want %d:%d", match.Line, match.Column, tt.line, tt.col)
			}
			for _, f := range got {
				checkNoLeak(t, f, tt.secret)
				if f.Offset < 0 || f.Offset+f.Length > len(tt.doc) {
					t.Errorf("span [%d,+%d) outside document of %d bytes", f.Offset, f.Length, len(tt.doc))
				}
			}
			if match.Encoding == "plain" && tt.doc[match.Offset:match.Offset+match.Length] != tt.secret {
				t.Errorf("plain span does not hold the secret")
			}
		})
	}
}

// checkNoLeak fails if a finding exposes the secret in any field.
func checkNoLeak(t *testing.T, f Finding, secret string) {
	t.Helper()
	rest := secret[len(detectPrefix([]byte(secret))):]
	for _, s := range []string{f.Preview, f.Fingerprint, f.Encoding, f.Provider} {
		if strings.Contains(s, rest[:12]) {
			t.Errorf("finding leaks the secret: %q", s)
		}
	}
	if len(f.Preview) > previewMax {
		t.Errorf("preview has %d bytes, max %d", len(f.Preview), previewMax)
	}
}

func TestScanNegatives(t *testing.T) {
	t.Parallel()
	set := testSet(t, ghToken, awsKey, plainKey)
	changed := []byte(ghToken)
	changed[20] ^= 1
	other := "ghp_" + strings.Repeat("Zq9", 12)
	tests := []struct {
		name string
		doc  string
	}{
		{"one character changed", "token=" + string(changed)},
		{"first character changed", "X" + ghToken[1:]},
		{"last character changed", awsKey[:len(awsKey)-1] + "Z"},
		{"truncated", "token=" + ghToken[:len(ghToken)-1] + "\n"},
		{"truncated at end of file", "token=" + ghToken[:len(ghToken)-1]},
		{"missing first byte", ghToken[1:]},
		{"unregistered same format", "token=" + other},
		{"split across lines", "token=" + ghToken[:20] + "\n" + ghToken[20:]},
		{"split across crlf", awsKey[:15] + "\r\n" + awsKey[15:]},
		{"split by space", plainKey[:10] + " " + plainKey[10:]},
		{"base64 of changed secret", base64.StdEncoding.EncodeToString(changed)},
		{"utf16 of truncated", utf16le(ghToken[:30], true)},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := set.Scan([]byte(tt.doc)); len(got) != 0 {
				t.Errorf("want no findings, got %+v", got)
			}
		})
	}
}

func TestScanPEM(t *testing.T) {
	t.Parallel()
	key := testPEM(t)
	f, err := Compute([]byte(key), ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Provider() != "pem" {
		t.Fatalf("provider = %q", f.Provider())
	}
	set := NewSet([]Fingerprint{f})
	body := strings.Join(strings.Split(key, "\n")[1:strings.Count(key, "\n")-1], "")
	rewrapped := "-----BEGIN PRIVATE KEY-----\n" + wrap(body, 76, "\n") + "\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		name string
		doc  string
		line int
		enc  string
	}{
		{"as registered", "x\n" + key, 2, "plain"},
		{"crlf", "a: |\r\n" + strings.ReplaceAll(key, "\n", "\r\n"), 2, "plain"},
		{"rewrapped", rewrapped, 1, "plain"},
		{"yaml indented", "key: |\n    " + strings.ReplaceAll(strings.TrimSpace(key), "\n", "\n    ") + "\n", 2, "plain"},
		{"json escaped", `{"private_key":"` + strings.ReplaceAll(key, "\n", `\n`) + `"}`, 1, "json-escape"},
		{"diff", "+" + strings.ReplaceAll(strings.TrimSpace(key), "\n", "\n+") + "\n", 1, "plain"},
		{"base64 of pem file", "tls.key: " + base64.StdEncoding.EncodeToString([]byte(key)), 1, "base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := set.Scan([]byte(tt.doc))
			if len(got) != 1 {
				t.Fatalf("want 1 finding, got %+v", got)
			}
			if got[0].Line != tt.line || got[0].Encoding != tt.enc {
				t.Errorf("line %d enc %q, want %d %q", got[0].Line, got[0].Encoding, tt.line, tt.enc)
			}
			if strings.Contains(got[0].Preview, body[40:60]) {
				t.Errorf("preview leaks the key")
			}
		})
	}
	changedBody := []byte(key)
	changedBody[100] ^= 1
	if got := set.Scan(changedBody); len(got) != 0 {
		t.Errorf("changed key found: %+v", got)
	}
}

// testPEM returns a fixed, fake PKCS#8-shaped key (random base64 body).
func testPEM(t testing.TB) string {
	t.Helper()
	var body bytes.Buffer
	x := uint64(12345)
	for i := 0; i < 900; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		body.WriteByte(byte(x >> 56))
	}
	b := base64.StdEncoding.EncodeToString(body.Bytes())
	return "-----BEGIN PRIVATE KEY-----\n" + wrap(b, 64, "\n") + "\n-----END PRIVATE KEY-----\n"
}

func TestScanMultipleAndOrder(t *testing.T) {
	t.Parallel()
	set := testSet(t, ghToken, awsKey)
	doc := "a=" + awsKey + " b=" + ghToken + " c=" + awsKey + "\n" + ghToken
	got := set.Scan([]byte(doc))
	if len(got) != 4 {
		t.Fatalf("want 4 findings, got %d: %+v", len(got), got)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Offset < got[i-1].Offset {
			t.Errorf("findings not ordered by offset")
		}
	}
	for _, f := range got {
		checkNoLeak(t, f, ghToken)
		checkNoLeak(t, f, awsKey)
	}
	if got[0].Preview != "a=******** b=ghp_******** c=********" {
		t.Errorf("preview = %q", got[0].Preview)
	}
}

func TestPreviewLongLine(t *testing.T) {
	t.Parallel()
	set := testSet(t, ghToken)
	doc := strings.Repeat("é", 300) + ghToken + strings.Repeat("ü", 300)
	got := set.Scan([]byte(doc))
	if len(got) != 1 {
		t.Fatalf("want 1 finding, got %d", len(got))
	}
	p := got[0].Preview
	if len(p) > previewMax || !strings.Contains(p, "ghp_********") || !strings.HasPrefix(p, "é") {
		t.Errorf("preview = %q (%d bytes)", p, len(p))
	}
	if got[0].Column != 601 {
		t.Errorf("column = %d, want 601", got[0].Column)
	}
}

func TestScanConcurrent(t *testing.T) {
	t.Parallel()
	set := testSet(t, ghToken, awsKey)
	doc := []byte(strings.Repeat("filler text\n", 1000) + "k=" + ghToken + "\n" + base64.StdEncoding.EncodeToString([]byte(awsKey)))
	want := len(set.Scan(doc))
	done := make(chan int)
	for i := 0; i < 8; i++ {
		go func() { done <- len(set.Scan(doc)) }()
	}
	for i := 0; i < 8; i++ {
		if got := <-done; got != want {
			t.Errorf("concurrent scan found %d, want %d", got, want)
		}
	}
}

func TestSetDuplicatesAndEmpty(t *testing.T) {
	t.Parallel()
	f := mustCompute(t, ghToken)
	set := NewSet([]Fingerprint{f, f, mustCompute(t, awsKey), {}})
	if set.Len() != 2 {
		t.Errorf("Len = %d, want 2", set.Len())
	}
	if got := set.Scan([]byte(ghToken + " " + ghToken)); len(got) != 2 {
		t.Errorf("found %d, want 2", len(got))
	}
	if got := NewSet(nil).Scan([]byte(ghToken)); len(got) != 0 {
		t.Errorf("empty set found %d", len(got))
	}
}

// TestASCIIStretch checks the character-level gate in front of base64
// decoding: it must pass every run whose decoding holds an ASCII stretch
// of the needed length, wherever the stretch sits, and stop identifiers.
func TestASCIIStretch(t *testing.T) {
	t.Parallel()
	b64 := base64.StdEncoding.EncodeToString
	r := rand.New(rand.NewPCG(3, 3))
	high := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(0x80 + r.IntN(128))
		}
		return b
	}
	for lead := range 7 {
		for _, text := range []string{strings.Repeat("x", 20), utf16le("0123456789", false)} {
			doc := append(append(high(lead), text...), high(5)...)
			if !asciiStretch([]byte(b64(doc)), 20) {
				t.Errorf("lead %d, %q: gate refused a run holding 20 ASCII bytes", lead, text)
			}
			if asciiStretch([]byte(b64(doc)), 21) {
				t.Errorf("lead %d: gate passed a run with only 20 ASCII bytes for 21", lead)
			}
		}
	}
	for _, id := range []string{"TestScanGHArchiveTextsWithPasswords", "OpAMD64VPMAXUQMasked512Merging", "golang/x/tools/internal/typesinternal"} {
		if asciiStretch([]byte(id), 20) {
			t.Errorf("gate passed identifier %q", id)
		}
	}
}

// TestScanEveryLane plants secrets at every offset modulo 8 inside a long
// token run and after a delimiter, with registries of prefixed tokens
// only, unprefixed only, and both: the filter loop handles eight offsets
// per step, each with its own code, and prefixed tokens take the
// prefix-bytes route rather than the filter.
func TestScanEveryLane(t *testing.T) {
	t.Parallel()
	for _, reg := range [][]string{{ghToken, slackTok}, {awsKey, plainKey}, {ghToken, awsKey, slackTok, plainKey}} {
		set := testSet(t, reg...)
		for _, secret := range reg {
			for lead := range 20 {
				for _, glue := range []string{"", " "} {
					doc := strings.Repeat("Q", lead) + glue + secret + glue + strings.Repeat("Z", 13)
					got := set.Scan([]byte(doc))
					want := lead + len(glue)
					if len(got) != 1 || got[0].Offset != want || got[0].Length != len(secret) {
						t.Errorf("registry %d, secret %.4s, lead %d, glue %q: got %+v, want one finding at %d", len(reg), secret, lead, glue, got, want)
					}
				}
			}
		}
	}
}

// TestScanEveryLanePasswords plants passwords at every offset modulo 8,
// glued to capitals or lowercase letters or after a space, with room after
// them for the unrolled every-offset loops or at the very end of the
// document (their tail loops), and inside base64 and UTF-16 at every offset
// modulo 8 too: kinds "w" and "u", long and short, with and without a
// provider prefix; kind "s" as registries stored before kind "w" hold it,
// long (which takes filterBoth) and short; alone and mixed with tokens.
func TestScanEveryLanePasswords(t *testing.T) {
	t.Parallel()
	type pw struct {
		secret string
		legacy bool // registered as kind "s", as before kind "w" existed
	}
	for _, reg := range [][]pw{
		{{longPw, false}}, {{shortPw, false}}, {{phrasePw, false}}, {{lowerShortPw, false}},
		{{prefixedPw, false}}, {{utf8Pw, false}}, {{longPw, true}}, {{shortPw, true}},
		{{longPw, false}, {shortPw, false}, {phrasePw, false}, {prefixedPw, false}, {ghToken, false}, {awsKey, false}},
		{{longPw, true}, {lowerShortPw, false}, {phrasePw, false}, {utf8Pw, false}, {ghToken, false}},
	} {
		var fps []Fingerprint
		want := map[string]string{} // secret → its fingerprint line
		for _, p := range reg {
			f := mustComputeWeak(t, p.secret)
			if p.legacy {
				f = legacyS(t, p.secret)
			}
			fps = append(fps, f)
			if f.kind != kindToken {
				want[p.secret] = f.String()
			}
		}
		set := NewSet(fps)
		for secret, fp := range want {
			for lead := range 20 {
				for _, glue := range []string{"", " "} {
					for _, fill := range []string{"Q", "q"} {
						for _, tail := range []string{"", strings.Repeat("Z", 40), strings.Repeat("z", 5)} {
							doc := strings.Repeat(fill, lead) + glue + secret + glue + tail
							got := set.Scan([]byte(doc))
							at := lead + len(glue)
							if len(got) != 1 || got[0].Offset != at || got[0].Length != len(secret) || got[0].Fingerprint != fp {
								t.Errorf("registry %d, %s, lead %d×%s, glue %q, tail %d: got %+v, want one finding at %d", len(reg), fp, lead, fill, glue, len(tail), got, at)
							}
						}
					}
				}
				for _, enc := range []string{"base64", "utf16le"} {
					planted := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("q", lead%8) + secret + "\n"))
					if enc == "utf16le" {
						planted = utf16le(strings.Repeat("q", lead)+secret, false)
					}
					doc := "x: " + planted + "\n"
					got := set.Scan([]byte(doc))
					if len(got) != 1 || !strings.HasPrefix(got[0].Encoding, enc) || got[0].Fingerprint != fp {
						t.Errorf("registry %d, %s, lead %d, %s: got %+v", len(reg), fp, lead, enc, got)
					}
				}
			}
		}
	}
}

// TestFilterBothMatchesReference checks the unrolled every-offset filter
// against a plain per-offset computation of both window hashes, on text
// dense in candidates (the filters of 20,000 passwords over random bytes,
// a third of them kind "w", which the short-window filters hold),
// over every split into calls that a full candidate buffer causes.
func TestFilterBothMatchesReference(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	var fps []Fingerprint
	for range 20000 {
		n := 12 + r.IntN(10)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('!' + r.IntN(94))
		}
		f := legacyS(t, string(b))
		if r.IntN(3) == 0 {
			f = mustComputeWeak(t, string(b)) // kind w
		}
		fps = append(fps, f)
	}
	s := NewSet(fps)
	if s.nShort == 0 || s.nLong == 0 || s.nWord == 0 {
		t.Fatalf("registry has %d short, %d long and %d long kind-w passwords, want all", s.nShort, s.nLong, s.nWord)
	}
	buf := make([]byte, 1<<19)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	// An offset passes the first stage when pre.long has the top 26 bits of
	// the long window's 40-bit hash h, or pre.short those of the short
	// window's 32-bit hash k (14 bits choose a word, 6 and 6 two bits in
	// it); it is then a candidate for each exact filter its window passes.
	in := func(t *prefilter, b uint64) bool {
		w := t[b>>12]
		return w&(1<<((b>>6)%64)) != 0 && w&(1<<(b%64)) != 0
	}
	var want []int32
	for i := 0; i+LongWindow <= len(buf); i++ {
		h, k := windowLong(buf[i:]), windowWord(buf[i:], false)
		if !in(&s.pre.long, h>>14) && !in(&s.pre.short, k>>6) {
			continue
		}
		if m := bloomMask(h); s.bloom[h>>s.bloomSh]&m == m {
			want = append(want, int32(i))
		}
		if hs := k >> s.shortSh; s.short[hs>>6]&(1<<(hs&63)) != 0 {
			want = append(want, int32(i)|shortCand)
		}
	}
	if len(want) < 200 {
		t.Fatalf("only %d reference candidates: the test needs a dense filter", len(want))
	}
	for _, from := range []int{0, 1, 7, 13} {
		var got []int32
		var cand [256]int32
		for i := from; i <= len(buf)-LongWindow; {
			var n int
			n, i = s.filterBoth(buf, i, &cand)
			got = append(got, cand[:n]...)
		}
		w := want
		for len(w) > 0 && w[0]&^shortCand < int32(from) {
			w = w[1:]
		}
		if !slices.Equal(got, w) {
			t.Fatalf("from %d: filterBoth gave %d candidates, reference %d", from, len(got), len(w))
		}
	}
}

// TestScanWithMore checks the scratch stack's move out of the Go heap: a
// megabyte of wrapped base64 needs more than scratchHeapMax, so the scan
// asks for room once, and finds what Scan finds. Room too small is
// declined and the stack grows on the heap as usual.
func TestScanWithMore(t *testing.T) {
	set := testSet(t, awsKey)
	payload := strings.Repeat("# a line of a file that was base64-encoded\n", 20000) + "KEY=" + awsKey + "\n"
	doc := []byte("data:\n" + wrap(base64.StdEncoding.EncodeToString([]byte(payload)), 76, "\n") + "\n")
	want := set.Scan(doc)
	if len(want) != 1 || want[0].Encoding != "base64" {
		t.Fatalf("Scan: %+v", want)
	}
	for _, tc := range []struct {
		name  string
		room  int // bytes more gives
		calls int
	}{
		{"room", 4 << 20, 1},
		{"too small", 1 << 10, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			room := make([]byte, tc.room)
			got := set.scanWith(doc, func(n int) []byte {
				calls++
				if n <= scratchHeapMax {
					t.Errorf("asked for %d bytes, no more than the heap keeps", n)
				}
				return room
			})
			if calls != tc.calls {
				t.Errorf("more called %d times, want %d", calls, tc.calls)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("scanWith: %+v, want %+v", got, want)
			}
		})
	}
	// The pooled scanner does not keep the caller's room.
	sc := set.scanner(false)
	defer sc.release()
	if sc.more != nil || cap(sc.scratch) >= 1<<20 {
		t.Errorf("pooled scanner kept more or the room: cap %d", cap(sc.scratch))
	}
}

// TestScanUTF16Spans checks the spans of secrets found in UTF-16 text, on
// both decoding routes: ASCII-only stretches (mapped by position) and
// stretches with other characters (mapped byte by byte).
func TestScanUTF16Spans(t *testing.T) {
	t.Parallel()
	set := testSet(t, ghToken)
	for _, lead := range []string{"key=", "café=", "x=ÿ"} {
		for _, enc := range []string{"utf16le", "utf16be"} {
			// With byte order marks: big-endian text after a non-NUL byte
			// and without one is read as little-endian from that byte.
			text := utf16le(lead+ghToken+" ", true)
			if enc == "utf16be" {
				text = utf16be(lead+ghToken+" ", true)
			}
			doc := "x\n" + text
			got := set.Scan([]byte(doc))
			want := 4 + 2*utf8.RuneCountInString(lead)
			if len(got) != 1 || got[0].Encoding != enc || got[0].Offset != want || got[0].Length != 2*len(ghToken) || got[0].Line != 2 {
				t.Errorf("%s %q: got %+v, want one finding at %d, %d bytes, line 2", enc, lead, got, want, 2*len(ghToken))
			}
		}
	}
}

// TestUTF16WordsMatchReference checks the 8-bytes-at-a-time stretch end and
// unit packing against one byte at a time, on text where NULs alternate for
// a random while, with non-ASCII units now and then, from every start.
func TestUTF16WordsMatchReference(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		buf := make([]byte, 1+r.IntN(120))
		par := r.IntN(2)
		for i := range buf {
			switch {
			case i%2 == par && r.IntN(60) != 0:
				buf[i] = 0
			case r.IntN(40) == 0:
				buf[i] = byte(0x80 + r.IntN(128))
			default:
				buf[i] = byte(1 + r.IntN(126))
			}
		}
		for z := range buf {
			if buf[z] != 0 {
				continue
			}
			for _, rs := range []int{z, max(z-1, 0)} {
				want := rs
				for want < len(buf) && (buf[want] == 0) == ((want-z)%2 == 0) {
					want++
				}
				if got := utf16End(buf, rs, z); got != want {
					t.Fatalf("utf16End(%x, %d, %d) = %d, want %d", buf, rs, z, got, want)
				}
			}
		}
		for _, le := range []bool{true, false} {
			run := buf[:len(buf)&^1]
			var want []byte
			ok := true
			for k := map[bool]int{true: 0, false: 1}[le]; k < len(run); k += 2 {
				if run[k] >= 0x80 {
					ok = false
					break
				}
				want = append(want, run[k])
			}
			got, gotOK := asciiUnits(nil, run, le)
			if gotOK != ok || ok && !bytes.Equal(got, want) {
				t.Fatalf("asciiUnits(%x, %v) = %x %v, want %x %v", run, le, got, gotOK, want, ok)
			}
		}
	}
}

// TestFilterShortMatchesReference checks the every-offset loop taken while
// no long "s" secret is registered against a per-offset computation, with
// short secrets of kinds "s" and "w" and long ones of kind "w" (the top 32
// bits of their hash in the same filters), over every split into calls that
// a full candidate buffer causes, up to the last 8 bytes.
func TestFilterShortMatchesReference(t *testing.T) {
	t.Parallel()
	// Below sparseShort a block's first test is one bit an offset; above
	// it, two.
	for _, tc := range []struct{ n, text int }{{sparseShort / 2, 1 << 20}, {sparseShort + 4000, 1 << 19}} {
		r := rand.New(rand.NewPCG(9, uint64(tc.n)))
		var fps []Fingerprint
		for range tc.n {
			b := make([]byte, 9+r.IntN(14))
			for i := range b {
				b[i] = byte('!' + r.IntN(94))
			}
			f := mustComputeWeak(t, string(b))
			if len(b) < 16 && r.IntN(2) == 0 {
				f = legacyS(t, string(b)) // short kind s
			}
			fps = append(fps, f)
		}
		s := NewSet(fps)
		if s.nShort == 0 || s.nLong != 0 || s.nWord == 0 {
			t.Fatalf("registry has %d short, %d long kind-s and %d long kind-w secrets, want short and long kind-w only", s.nShort, s.nLong, s.nWord)
		}
		buf := make([]byte, tc.text+5)
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		var want []int32
		for i := 0; i+8 <= len(buf); i++ {
			c := le64(buf[i:]) * winK
			x := s.pre.short[c>>50]
			if x&(1<<(c>>44&63)) == 0 || x&(1<<(c>>38&63)) == 0 {
				continue
			}
			if hs := c >> 32 >> s.shortSh; s.short[hs>>6]&(1<<(hs&63)) != 0 {
				want = append(want, int32(i)|shortCand)
			}
		}
		if len(want) < 300 {
			t.Fatalf("%d fingerprints: only %d reference candidates: the test needs a dense filter", tc.n, len(want))
		}
		var got []int32
		var cand [256]int32
		for i := 0; i+8 <= len(buf); {
			var n int
			n, i = s.filterShort(buf, i, &cand)
			got = append(got, cand[:n]...)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%d fingerprints: filterShort gave %d candidates, reference %d", tc.n, len(got), len(want))
		}
	}
}
