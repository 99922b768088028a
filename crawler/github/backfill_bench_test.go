package github

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"testing"

	"github.com/leakwatch/leakwatch/crawler/github/githubtest"
)

// BenchmarkArchiveStream reads a GH Archive hour file as ReadHour does
// (gzip stream, bounded lines, event ids, per-consumer counts) from real
// GH Archive lines (the 800-event sample repeated with fresh ids). Bytes/s
// is of decompressed JSON, so an hour of N GB raw takes N GB over that
// rate.
//
//	go test ./crawler/github -run '^$' -bench ArchiveStream -benchmem
func BenchmarkArchiveStream(b *testing.B) {
	recorded, err := githubtest.Recorded()
	if err != nil {
		b.Fatal(err)
	}
	var raw bytes.Buffer
	lines := 0
	for rep := 0; raw.Len() < 64<<20; rep++ {
		for i, ev := range recorded {
			// Fresh ids keep the fast path honest: GH Archive's lines start
			// with the id.
			id := fmt.Sprintf(`{"id":"%d"`, 30000000000+rep*len(recorded)+i)
			_, rest, _ := bytes.Cut(ev, []byte(`,`))
			raw.WriteString(id)
			raw.WriteByte(',')
			raw.Write(rest)
			raw.WriteByte('\n')
			lines++
		}
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(raw.Bytes())
	_ = w.Close()
	bf := NewBackfill(BackfillConfig{Logger: discardLogger()})
	b.SetBytes(int64(raw.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := gzip.NewReader(bytes.NewReader(gz.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		lr := newLineReader(r, ArchiveMaxLineDefault)
		cs := []*consumer{{}, {gap: 1, after: 1, before: 2}}
		var minID, maxID, n int64
		for {
			line, over, err := lr.next()
			if err != nil {
				break
			}
			bf.consume(cs, n, line, over, &minID, &maxID)
			n++
		}
		if cs[0].events != int64(lines) {
			b.Fatalf("%d events, want %d", cs[0].events, lines)
		}
	}
	b.ReportMetric(float64(raw.Len())/float64(gz.Len()), "gzip-ratio")
}
