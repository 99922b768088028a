package matcher

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
)

// A realistic registry and text, after issue 19: the kind benchmarks above
// (random alphanumeric tokens, one planted secret per 160 KiB of Go source)
// gave 1,207 MB/s at 100k where a customer-like registry and text gave 240.

// registryMix describes a benchmark registry: n fingerprints, of which
// passwords is the share of passwords with symbols and 10% are unprefixed
// keys; the rest are provider tokens of every supported kind.
type registryMix struct {
	n         int
	passwords float64
}

func (m registryMix) String() string {
	return fmt.Sprintf("%dk-%gpct-passwords", m.n/1000, m.passwords*100)
}

const (
	alnumChars  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	base32Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b64Chars    = alnumChars + "+/"
	hexChars    = "0123456789abcdef"
	pwSymbols   = "!@#$%^&*()-_=+[]{};:,.?/~"
)

func randFrom(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// providerToken returns a token shaped like the given provider prefix's
// real ones (lengths and alphabets as the providers issue them).
func providerToken(r *rand.Rand, prefix string) string {
	switch prefix {
	case "github_pat_":
		return prefix + randFrom(r, alnumChars, 22) + "_" + randFrom(r, alnumChars, 59)
	case "ghp_", "gho_", "ghu_", "ghs_", "ghr_":
		return prefix + randFrom(r, alnumChars, 36)
	case "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-":
		return prefix + randFrom(r, "0123456789", 13) + "-" + randFrom(r, "0123456789", 13) + "-" + randFrom(r, alnumChars, 24)
	case "xapp-":
		return prefix + "1-A" + randFrom(r, base32Chars, 10) + "-" + randFrom(r, "0123456789", 13) + "-" + randFrom(r, hexChars, 64)
	case "sk_live_", "rk_live_", "sk_test_", "rk_test_":
		return prefix + randFrom(r, alnumChars, 99)
	case "whsec_":
		return prefix + randFrom(r, alnumChars, 32)
	case "glpat-", "gldt-", "glrt-", "glptt-":
		return prefix + randFrom(r, alnumChars+"-_", 20)
	case "AKIA", "ASIA":
		return prefix + randFrom(r, base32Chars, 16)
	case "AIza":
		return prefix + randFrom(r, alnumChars+"-_", 35)
	case "GOCSPX-":
		return prefix + randFrom(r, alnumChars+"-_", 28)
	case "npm_":
		return prefix + randFrom(r, alnumChars, 36)
	case "SG.":
		return prefix + randFrom(r, alnumChars+"-_", 22) + "." + randFrom(r, alnumChars+"-_", 43)
	case "sk-proj-":
		return prefix + randFrom(r, alnumChars+"-_", 156)
	case "sk-ant-":
		return prefix + "api03-" + randFrom(r, alnumChars+"-_", 95)
	}
	return prefix + randFrom(r, alnumChars, 32)
}

// unprefixedKey returns a key with no provider prefix: an AWS secret access
// key, a hex API key, a UUID or a base64 key.
func unprefixedKey(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return randFrom(r, b64Chars, 40)
	case 1:
		return randFrom(r, hexChars, 32)
	case 2:
		u := randFrom(r, hexChars, 32)
		return u[:8] + "-" + u[8:12] + "-4" + u[13:16] + "-a" + u[17:20] + "-" + u[20:]
	default:
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return base64.StdEncoding.EncodeToString(b)
	}
}

var pwWords = []string{"Summer", "Winter", "Dragon", "Monkey", "Falcon", "Orange", "Purple", "Coffee",
	"Rocket", "Tiger", "Castle", "Silver", "Forest", "Planet", "Shadow", "Thunder", "Company", "Welcome"}

// password returns a password with symbols, as people and password
// managers make them: random, word-based, or a passphrase.
func password(r *rand.Rand) string {
	switch r.IntN(3) {
	case 0:
		s := []byte(randFrom(r, alnumChars+pwSymbols, 12+r.IntN(9)))
		s[r.IntN(len(s))] = pwSymbols[r.IntN(len(pwSymbols))]
		return string(s)
	case 1:
		return pwWords[r.IntN(len(pwWords))] + fmt.Sprint(1970+r.IntN(60)) + string(pwSymbols[r.IntN(len(pwSymbols))]) + randFrom(r, alnumChars, 2)
	default:
		var ws []string
		for range 3 {
			ws = append(ws, strings.ToLower(pwWords[r.IntN(len(pwWords))]))
		}
		return strings.Join(ws, string(pwSymbols[r.IntN(len(pwSymbols))])) + fmt.Sprint(r.IntN(100))
	}
}

// realisticSecrets returns the registry's secrets, shuffled.
func realisticSecrets(m registryMix) []string {
	r := rand.New(rand.NewPCG(uint64(m.n), uint64(m.passwords*1000)))
	nPw := int(float64(m.n) * m.passwords)
	nUnprefixed := m.n / 10
	out := make([]string, 0, m.n)
	for range nPw {
		out = append(out, password(r))
	}
	for range nUnprefixed {
		out = append(out, unprefixedKey(r))
	}
	for len(out) < m.n {
		out = append(out, providerToken(r, providers[r.IntN(len(providers))].prefix))
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// realisticDoc builds the text: the Go source corpus in 64 KiB slices, with,
// per slice, a registered secret in a config line, a truncated copy and a
// near miss (one character changed) of other registered secrets, a base64
// blob (of random bytes, or of a config line holding a secret), and every
// eighth slice re-encoded as UTF-16LE. It returns how many registered
// secrets were planted whole (each must be found).
func realisticDoc(secrets []string) (doc []byte, planted int) {
	r := rand.New(rand.NewPCG(1, 2))
	corpus := benchCorpus()
	const slice = 64 << 10
	var buf bytes.Buffer
	pick := func() string { return secrets[r.IntN(len(secrets))] }
	for i := 0; i+slice <= len(corpus); i += slice {
		var part bytes.Buffer
		part.Write(corpus[i : i+slice])
		s := pick()
		fmt.Fprintf(&part, "\nAPI_KEY=%q\n", s)
		planted++
		t := pick()
		fmt.Fprintf(&part, "// truncated: %s\n", t[:len(t)*2/3])
		n := []byte(pick())
		n[len(n)/2] ^= 1
		fmt.Fprintf(&part, "token: %s\n", n)
		if i/slice%2 == 0 {
			b := make([]byte, 300+r.IntN(1500))
			for k := range b {
				b[k] = byte(r.Uint32())
			}
			fmt.Fprintf(&part, "data: %s\n", base64.StdEncoding.EncodeToString(b))
		} else {
			fmt.Fprintf(&part, "secret.yaml: %s\n", base64.StdEncoding.EncodeToString([]byte("password: "+pick()+"\n")))
			planted++
		}
		if i/slice%8 == 7 {
			buf.WriteString(utf16le(part.String(), true))
		} else {
			buf.Write(part.Bytes())
		}
	}
	return buf.Bytes(), planted
}

type realisticBench struct {
	set     *Set
	doc     []byte
	planted int
}

var realisticBenches sync.Map // registryMix → *realisticBench

func getRealistic(tb testing.TB, m registryMix) *realisticBench {
	if v, ok := realisticBenches.Load(m); ok {
		return v.(*realisticBench)
	}
	secrets := realisticSecrets(m)
	fps := make([]Fingerprint, 0, len(secrets))
	for _, s := range secrets {
		f, err := Compute([]byte(s), ComputeOpts{AllowWeak: true})
		if err != nil {
			tb.Fatalf("registry secret refused: %v", err)
		}
		fps = append(fps, f)
	}
	doc, planted := realisticDoc(secrets)
	rb := &realisticBench{set: NewSet(fps), doc: doc, planted: planted}
	realisticBenches.Store(m, rb)
	return rb
}

// BenchmarkRealistic scans the realistic text with each registry mix of
// issue 19 and reports MB per CPU-second (one core: Scan is one goroutine).
//
//	go test -run '^$' -bench Realistic -benchtime 5x -count 5 ./matcher/
func BenchmarkRealistic(b *testing.B) {
	for _, m := range []registryMix{
		{1_000, 0.05},
		{100_000, 0},
		{100_000, 0.01},
		{100_000, 0.05},
		{100_000, 0.10},
		{1_000_000, 0.05},
	} {
		b.Run(m.String(), func(b *testing.B) {
			rb := getRealistic(b, m)
			b.SetBytes(int64(len(rb.doc)))
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				if got := rb.set.Scan(rb.doc); len(got) < rb.planted {
					b.Fatalf("found %d of %d planted secrets", len(got), rb.planted)
				}
			}
			reportCPU(b, cpu0, len(rb.doc))
		})
	}
}

// TestRealisticRecall checks the benchmark's own premise on a small
// registry: every planted secret is found, in every encoding, and no near
// miss or truncated copy is.
func TestRealisticRecall(t *testing.T) {
	t.Parallel()
	m := registryMix{2_000, 0.10}
	secrets := realisticSecrets(m)
	var fps []Fingerprint
	for _, s := range secrets {
		f, err := Compute([]byte(s), ComputeOpts{AllowWeak: true})
		if err != nil {
			t.Fatalf("registry secret refused: %v", err)
		}
		fps = append(fps, f)
	}
	set := NewSet(fps)
	doc, planted := realisticDoc(secrets)
	got := set.Scan(doc)
	if len(got) != planted {
		t.Fatalf("found %d, planted %d: a secret was missed, or a truncated or near-miss copy matched", len(got), planted)
	}
	encodings := map[string]int{}
	for _, f := range got {
		encodings[f.Encoding]++
	}
	if encodings["base64"] == 0 || encodings["utf16le"] == 0 {
		t.Errorf("encodings found: %v, want base64 and utf16le among them", encodings)
	}
}

// The test binary doubles as the generator of bench/compare.sh's registry,
// so the script and the benchmarks use the same secrets:
//
//	go test -c -o matcher.test ./matcher/
//	./matcher.test -realistic-registry secrets.txt -realistic-n 100000 -realistic-passwords 0.05
var (
	registryOut = flag.String("realistic-registry", "", "write the realistic registry's secrets, one a line, to this file and exit (for bench/compare.sh)")
	registryN   = flag.Int("realistic-n", 100_000, "fingerprints in the registry written by -realistic-registry")
	registryPw  = flag.Float64("realistic-passwords", 0.05, "share of passwords in the registry written by -realistic-registry")
)

func TestMain(m *testing.M) {
	flag.Parse()
	if *registryOut != "" {
		if err := writeRegistry(*registryOut, registryMix{*registryN, *registryPw}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writeRegistry(path string, m registryMix) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, s := range realisticSecrets(m) {
		w.WriteString(s + "\n")
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write registry: %w", err)
	}
	return f.Close()
}
