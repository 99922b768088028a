package matcher

import (
	"os"
	"testing"
)

func benchFile(b *testing.B, path string) {
	f, _ := os.Open("/tmp/cmp/fp")
	fps, _ := ReadFingerprints(f)
	s := NewSet(fps)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		s.Scan(data)
	}
}

func BenchmarkTmpGo117(b *testing.B) {
	benchFile(b, "/tmp/cmp/tree/debug/buildinfo/testdata/go117/go117.base64")
}
func BenchmarkTmpZzip(b *testing.B) { benchFile(b, "/tmp/cmp/tree/time/tzdata/zzipdata.go") }
func BenchmarkTmpTrace(b *testing.B) {
	benchFile(b, "/tmp/cmp/tree/internal/trace/traceviewer/static/trace_viewer_full.html")
}
