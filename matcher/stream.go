package matcher

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Streaming parameters. ChunkSize is the fresh data scanned per round;
// maxStreamBuffer bounds how far a single encoded run or PEM block may grow
// before ScanReader cuts it (beyond that it can miss what Scan would find).
const (
	ChunkSize       = 4 << 20
	maxStreamBuffer = 256 << 20
	previewContext  = 256
)

// ScanReader scans a stream in chunks and returns the same findings as Scan
// on the whole stream, with offsets and lines relative to the stream start,
// while holding only a few chunks in memory (more while a single encoded run
// or PEM block is longer than that, up to 256 MiB).
//
// Chunks overlap: each round scans its buffer whole but reports only the
// findings that start before a cut point, chosen so that every secret,
// encoded run and PEM block starting before it lies entirely in the buffer;
// the next buffer starts early enough to hold every run crossing the cut.
func (s *Set) ScanReader(r io.Reader) ([]Finding, error) {
	if s == nil || s.n == 0 {
		_, err := io.Copy(io.Discard, r)
		if err != nil {
			return nil, fmt.Errorf("scan reader: %w", err)
		}
		return nil, nil
	}
	overlap := s.maxLen + 4096
	var (
		out     []Finding
		buf     []byte
		base    posBase // position of buf[0] in the stream
		repFrom int     // stream offset from which findings are reported
		want    = ChunkSize
		eof     bool
	)
	for {
		// Fill: fresh data past repFrom of at least want bytes plus overlap.
		for !eof && len(buf)-(repFrom-base.off) < want+overlap {
			if cap(buf)-len(buf) < 64<<10 {
				nb := make([]byte, len(buf), 2*cap(buf)+ChunkSize)
				copy(nb, buf)
				buf = nb
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if errors.Is(err, io.EOF) {
				eof = true
			} else if err != nil {
				return out, fmt.Errorf("scan reader at offset %d: %w", base.off+len(buf), err)
			}
		}
		sc := s.scanner(!eof)
		sc.level(buf, 0, "", nil)
		hits := sortHits(sc.hits)
		cut := len(buf)
		if !eof {
			cut = len(buf) - overlap
			for _, run := range sc.runs {
				if run[1] > len(buf)-64 && run[0] < cut {
					cut = run[0] // may be truncated by the buffer end
				}
			}
			if cut <= repFrom-base.off {
				if len(buf) < maxStreamBuffer {
					want *= 2 // a run longer than the buffer: read more
					sc.release()
					continue
				}
				cut = len(buf) - overlap
			}
		}
		from := repFrom - base.off
		var rep []hit
		for _, h := range hits {
			if h.off >= from && h.off < cut {
				rep = append(rep, h)
			}
		}
		// Previews redact every hit in the buffer, reported or not.
		out = append(out, s.findings(buf, rep, hits, base)...)
		if eof {
			sc.release()
			return out, nil
		}
		// The next buffer starts before every run crossing the cut.
		next := max(cut-previewContext, 0)
		for _, run := range sc.runs {
			if run[0] < next && run[1] > next {
				next = run[0]
			}
		}
		sc.release()
		// Advance base past buf[:next].
		dropped := buf[:next]
		if k := bytes.LastIndexByte(dropped, '\n'); k >= 0 {
			base.line += bytes.Count(dropped, []byte{'\n'})
			base.lineStart = base.off + k + 1
		}
		base.off += next
		repFrom = base.off + (cut - next)
		buf = append(buf[:0], buf[next:]...)
		want = ChunkSize
	}
}
