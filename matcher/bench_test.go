package matcher

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchCorpus builds about 16 MiB of realistic text (Go source, JSON, YAML,
// Markdown, text) from the Go distribution on disk, with registered secrets
// planted every 64 KiB.
var benchCorpus = sync.OnceValue(func() []byte {
	root := filepath.Join(runtime.GOROOT(), "src")
	var buf bytes.Buffer
	exts := map[string]int{".go": 10 << 20, ".json": 2 << 20, ".yaml": 1 << 20, ".md": 2 << 20, ".txt": 1 << 20}
	got := map[string]int{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		ext := filepath.Ext(path)
		if got[ext] >= exts[ext] {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil || bytes.IndexByte(b, 0) >= 0 {
			return nil
		}
		got[ext] += len(b)
		buf.Write(b)
		return nil
	})
	return buf.Bytes()
})

// randSecret returns a random provider-like token: one in eight has no
// provider prefix.
func randSecret(r *rand.Rand) string {
	return randToken(r, []string{"ghp_", "AKIA", "xoxb-", "sk_live_", "glpat-", "AIza", "npm_", ""})
}

func randToken(r *rand.Rand, prefixes []string) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	p := prefixes[r.IntN(len(prefixes))]
	n := 20 + r.IntN(30)
	var b strings.Builder
	b.WriteString(p)
	for i := 0; i < n; i++ {
		b.WriteByte(alnum[r.IntN(len(alnum))])
	}
	return b.String()
}

var benchSets sync.Map // size and generator -> *benchSet

type benchSet struct {
	set     *Set
	secrets []string
	doc     []byte
}

func getBenchSet(tb testing.TB, n int) *benchSet {
	return getBenchSetOf(tb, n, randSecret)
}

func getBenchSetOf(tb testing.TB, n int, gen func(*rand.Rand) string) *benchSet {
	key := fmt.Sprintf("%d %p", n, gen)
	if v, ok := benchSets.Load(key); ok {
		return v.(*benchSet)
	}
	r := rand.New(rand.NewPCG(uint64(n), 42))
	fps := make([]Fingerprint, 0, n)
	secrets := make([]string, 0, n)
	for len(fps) < n {
		s := gen(r)
		f, err := Compute([]byte(s), ComputeOpts{AllowWeak: true})
		if err != nil {
			continue
		}
		fps = append(fps, f)
		secrets = append(secrets, s)
	}
	corpus := benchCorpus()
	// Plant 100 registered secrets in a copy of the corpus, in assorted
	// contexts.
	var doc bytes.Buffer
	step := len(corpus) / 100
	for i := 0; i < 100; i++ {
		doc.Write(corpus[i*step : (i+1)*step])
		doc.WriteString("\nTOKEN=\"" + secrets[i*(n/100)] + "\"\n")
	}
	bs := &benchSet{set: NewSet(fps), secrets: secrets, doc: doc.Bytes()}
	benchSets.Store(key, bs)
	return bs
}

func benchmarkScan(b *testing.B, n int) {
	benchmarkScanSet(b, getBenchSet(b, n))
}

func benchmarkScanSet(b *testing.B, bs *benchSet) {
	b.SetBytes(int64(len(bs.doc)))
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		if got := bs.set.Scan(bs.doc); len(got) < 100 {
			b.Fatalf("found %d of 100 planted secrets", len(got))
		}
	}
	reportCPU(b, cpu0, len(bs.doc))
}

// reportCPU adds MB per CPU-second, which stays meaningful when other
// processes share the machine (wall-clock MB/s does not).
func reportCPU(b *testing.B, cpu0 time.Duration, size int) {
	if d := cpuTime() - cpu0; d > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/1e6/d.Seconds(), "MB/cpu-s")
	}
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScanPlainOnly measures the filter loop alone (no decoding), the
// floor for Scan.
func BenchmarkScanPlainOnly100k(b *testing.B) {
	bs := getBenchSet(b, 100_000)
	b.SetBytes(int64(len(bs.doc)))
	cpu0 := cpuTime()
	for b.Loop() {
		var cand [256]int32
		bs.set.scanPlain(bs.doc, &cand, func(a, z int, e *entry) {})
	}
	reportCPU(b, cpu0, len(bs.doc))
}

// BenchmarkDecodeRuns measures finding and decoding encoded runs alone.
func BenchmarkDecodeRuns100k(b *testing.B) {
	bs := getBenchSet(b, 100_000)
	b.SetBytes(int64(len(bs.doc)))
	cpu0 := cpuTime()
	for b.Loop() {
		sc := scanner{s: bs.set}
		sc.decodeRuns(bs.doc, 0, "", nil)
	}
	reportCPU(b, cpu0, len(bs.doc))
}

func BenchmarkScan1k(b *testing.B)   { benchmarkScan(b, 1_000) }
func BenchmarkScan100k(b *testing.B) { benchmarkScan(b, 100_000) }
func BenchmarkScan1M(b *testing.B)   { benchmarkScan(b, 1_000_000) }

// BenchmarkScan1MUnprefixed is the worst case for the filters: a million
// tokens without a provider prefix (AWS secret keys, internal API keys), so
// the 4 MiB every-offset filter holds them all.
func BenchmarkScan1MUnprefixed(b *testing.B) {
	benchmarkScanSet(b, getBenchSetOf(b, 1_000_000, randUnprefixed))
}

func randUnprefixed(r *rand.Rand) string { return randToken(r, []string{""}) }

// BenchmarkNaive100k is the baseline from issue 3, run on the same corpus
// and machine: tokenize at whitespace, quotes and "=:/@.", SHA-256 every
// 16-128-byte token and look it up in a map of 100,000 hashes.
func BenchmarkNaive100k(b *testing.B) {
	bs := getBenchSet(b, 100_000)
	m := make(map[[32]byte]bool, len(bs.secrets))
	for _, s := range bs.secrets {
		m[sha256.Sum256([]byte(s))] = true
	}
	var sep [256]bool
	for _, c := range " \t\r\n\"'`=:/@.,;(){}[]<>" {
		sep[c] = true
	}
	b.SetBytes(int64(len(bs.doc)))
	cpu0 := cpuTime()
	for b.Loop() {
		found := 0
		start := 0
		doc := bs.doc
		for i := 0; i <= len(doc); i++ {
			if i < len(doc) && !sep[doc[i]] {
				continue
			}
			if n := i - start; n >= 16 && n <= 128 && m[sha256.Sum256(doc[start:i])] {
				found++
			}
			start = i + 1
		}
		if found < 100 {
			b.Fatalf("naive found %d", found)
		}
	}
	reportCPU(b, cpu0, len(bs.doc))
}

// BenchmarkNewSet1M reports the time to build a set of a million
// fingerprints and the heap it holds (bytes per fingerprint).
func BenchmarkNewSet1M(b *testing.B) {
	bs := getBenchSet(b, 1_000_000)
	fps := bs.set.Fingerprints()
	var set *Set
	for b.Loop() {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		set = NewSet(fps)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/float64(set.Len()), "heap-B/fp")
	}
	runtime.KeepAlive(set)
}

// BenchmarkScan100kWithPasswords adds 1,000 passwords with symbols (kind
// "s") to the 100,000 tokens: every offset is then hashed.
func BenchmarkScan100kWithPasswords(b *testing.B) {
	bs := getBenchSet(b, 100_000)
	fps := bs.set.Fingerprints()
	r := rand.New(rand.NewPCG(7, 7))
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*()"
	for len(fps) < 101_000 {
		p := make([]byte, 20)
		for i := range p {
			p[i] = chars[r.IntN(len(chars))]
		}
		p[3] = '!'
		if f, err := Compute(p, ComputeOpts{}); err == nil {
			fps = append(fps, f)
		}
	}
	set := NewSet(fps)
	b.SetBytes(int64(len(bs.doc)))
	cpu0 := cpuTime()
	for b.Loop() {
		if got := set.Scan(bs.doc); len(got) < 100 {
			b.Fatalf("found %d", len(got))
		}
	}
	reportCPU(b, cpu0, len(bs.doc))
}
