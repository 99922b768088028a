package matcher

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSecrets are fuzzSet's secrets: tokens, and long and short passwords
// (kinds "w" and "u", one after a provider prefix), so every fuzzed scan
// also takes the every-offset path.
var fuzzSecrets = []string{ghToken, awsKey, slackTok, longPw, shortPw, phrasePw, prefixedPw, utf8Pw}

var fuzzSet = func() *Set {
	var fps []Fingerprint
	for _, s := range fuzzSecrets {
		f, err := Compute([]byte(s), ComputeOpts{AllowWeak: true})
		if err != nil {
			panic(err)
		}
		fps = append(fps, f)
	}
	return NewSet(fps)
}()

// FuzzScan plants a secret, plainly or encoded, between random texts and
// requires it to be found, with a span inside the document and no leak.
func FuzzScan(f *testing.F) {
	f.Add([]byte("export X="), []byte("\n"), uint8(0))
	f.Add([]byte("{\"a\":\"\\n"), []byte("\"}"), uint8(1))
	f.Add([]byte("\x00\x00A\x00"), []byte("QUJD"), uint8(2))
	f.Add([]byte("%2F%"), []byte("%zz"), uint8(3))
	f.Add([]byte("\\u00"), []byte("\\u12"), uint8(4))
	f.Add([]byte("\xff\xfe"), []byte{0, 0, 1}, uint8(5))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\n"), []byte("=="), uint8(1))
	f.Fuzz(func(t *testing.T, pre, post []byte, mode uint8) {
		if len(pre)+len(post) > 1<<16 {
			return
		}
		secret := fuzzSecrets[int(mode)%len(fuzzSecrets)]
		var planted, enc string
		switch mode % 6 {
		case 0, 1:
			planted, enc = secret, "plain"
		case 2:
			planted, enc = "  "+base64.StdEncoding.EncodeToString([]byte("k="+secret+"\n"))+"  ", "base64"
		case 3:
			var b strings.Builder
			for i := 0; i < len(secret); i++ {
				fmt.Fprintf(&b, "%%%02X", secret[i])
			}
			planted, enc = "  "+b.String()+"  ", "url"
		case 4:
			planted, enc = "  "+jsonU(secret)+"  ", "json-escape"
		case 5:
			planted, enc = "  "+utf16le(secret, false)+"  ", "utf16le"
		}
		doc := append(append(append([]byte{}, pre...), planted...), post...)
		got := fuzzSet.Scan(doc)
		want := mustComputeWeak(t, secret).String()
		found := false
		for _, fd := range got {
			if fd.Offset < 0 || fd.Length <= 0 || fd.Offset+fd.Length > len(doc) || fd.Line < 1 || fd.Column < 1 {
				t.Fatalf("bad position %+v", fd)
			}
			if !utf8.ValidString(fd.Preview) || len(fd.Preview) > previewMax {
				t.Fatalf("bad preview %q", fd.Preview)
			}
			for _, s := range fuzzSecrets {
				if strings.Contains(fd.Preview, s[4:12]) {
					t.Fatalf("preview leaks a secret: %q", fd.Preview)
				}
			}
			if fd.Fingerprint == want && fd.Offset >= len(pre)-4 && strings.Contains(fd.Encoding, enc) {
				found = true
			}
		}
		if !found {
			t.Fatalf("planted %s secret not found; findings %+v", enc, got)
		}
	})
}

// FuzzScanReader checks that streaming agrees with Scan on random input.
func FuzzScanReader(f *testing.F) {
	f.Add([]byte("a=" + ghToken + "\n" + base64.StdEncoding.EncodeToString([]byte(awsKey))))
	f.Fuzz(func(t *testing.T, doc []byte) {
		want := fuzzSet.Scan(doc)
		got, err := fuzzSet.ScanReader(bytes.NewReader(doc))
		if err != nil || !sameFindings(got, want) {
			t.Fatalf("ScanReader %v (err %v) != Scan %v", got, err, want)
		}
	})
}

// checkSrc verifies a decoder's offset map: one entry per decoded byte plus
// the end, non-decreasing, within the run.
func checkSrc(t *testing.T, dec []byte, src []int32, base, n int) {
	t.Helper()
	if len(src) != len(dec)+1 {
		t.Fatalf("src has %d entries for %d bytes", len(src), len(dec))
	}
	for i := 1; i < len(src); i++ {
		if src[i] < src[i-1] {
			t.Fatalf("src decreases at %d", i)
		}
	}
	if len(src) > 0 && (int(src[0]) < base || int(src[len(src)-1]) != base+n) {
		t.Fatalf("src out of the run")
	}
}

func FuzzDecodePercent(f *testing.F) {
	f.Add([]byte("a%2Fb%zz%4"))
	f.Fuzz(func(t *testing.T, run []byte) {
		dec, src := decodePercent(nil, nil, run, 7)
		checkSrc(t, dec, src, 7, len(run))
		if !bytes.Contains(run, []byte("%")) && !bytes.Equal(dec, run) {
			t.Fatal("decoding without escapes changed the run")
		}
	})
}

func FuzzDecodeBackslash(f *testing.F) {
	f.Add([]byte(`a\u0041\ud83d\ude00\x41\/\n\`))
	f.Fuzz(func(t *testing.T, run []byte) {
		dec, src := decodeBackslash(nil, nil, run, 3)
		checkSrc(t, dec, src, 3, len(run))
	})
}

func FuzzDecodeBase64(f *testing.F) {
	f.Add([]byte("QUtJQQ==\nQUtJ"), uint8(0))
	f.Fuzz(func(t *testing.T, doc []byte, _ uint8) {
		// The run finder and lenient decoder must not panic on any input,
		// and must find a delimited base64 secret appended to it.
		sc := scanner{s: fuzzSet, record: true}
		sc.base64Runs(doc, 0, "", nil)
		for _, r := range sc.runs {
			if r[0] < 0 || r[1] > len(doc) || r[0] > r[1] {
				t.Fatalf("bad run %v", r)
			}
		}
		d2 := append(append([]byte{}, doc...), " "+base64.StdEncoding.EncodeToString([]byte(ghToken))+" "...)
		if len(fuzzSet.Scan(d2)) == 0 {
			t.Fatal("base64 secret not found")
		}
	})
}

func FuzzUTF16(f *testing.F) {
	f.Add([]byte(utf16le("hello "+ghToken, true)))
	f.Add([]byte(utf16be("x", true)))
	f.Fuzz(func(t *testing.T, doc []byte) {
		sc := scanner{s: fuzzSet, record: true}
		sc.utf16Runs(doc, 0, "", nil, 8)
		if LooksBinary(doc) && bytes.HasPrefix(doc, []byte{0xff, 0xfe}) {
			t.Fatal("UTF-16 with BOM called binary")
		}
	})
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add(mustCompute(f, ghToken).String())
	f.Add("lw1:pem::1200::" + strings.Repeat("ab", 16))
	f.Add("lw1:s::20:0000000000:" + strings.Repeat("0", 32))
	for _, s := range []string{longPw, shortPw, prefixedPw, utf8Pw} {
		f.Add(mustComputeWeak(f, s).String())
	}
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		if fp.String() != s {
			t.Fatalf("accepted non-canonical %q (canonical %q)", s, fp.String())
		}
	})
}

func FuzzCompute(f *testing.F) {
	f.Add([]byte(ghToken), false)
	f.Add([]byte(testPEM(f)), true)
	f.Fuzz(func(t *testing.T, secret []byte, weak bool) {
		fp, err := Compute(secret, ComputeOpts{AllowWeak: weak})
		if err != nil {
			if len(secret) >= 8 && strings.Contains(err.Error(), string(secret)) {
				t.Fatalf("error leaks the secret")
			}
			return
		}
		p, err := ParseFingerprint(fp.String())
		if err != nil || p != fp {
			t.Fatalf("round trip of %q: %v", fp.String(), err)
		}
		if fp.Provider() != "pem" && len(fuzzSet.Scan(secret)) != 0 {
			// only the registered fixtures can match
			if !slices.ContainsFunc(fuzzSecrets, func(s string) bool { return bytes.Contains(secret, []byte(s)) }) {
				t.Fatal("unregistered secret matched")
			}
		}
		if fp.Provider() != "pem" && len(NewSet([]Fingerprint{fp}).Scan(secret)) == 0 {
			t.Fatal("registered secret not found in itself")
		}
	})
}

// base64Runs decodes every base64 run of buf (the decoding half of
// tokenPass; used by tests).
func (sc *scanner) base64Runs(buf []byte, depth int, enc string, m spanMap) {
	sc.tokenPass(buf, depth, enc, m, false, nil)
}
