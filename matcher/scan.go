package matcher

import (
	"bytes"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Finding is one occurrence of a registered secret in a document.
type Finding struct {
	Fingerprint string // Fingerprint.String() of the matched entry
	Provider    string
	Offset      int    // byte offset in the original document (for encoded matches: start of the encoded run)
	Length      int    // bytes in the original document covered (the encoded run for encoded matches)
	Line        int    // 1-based
	Column      int    // 1-based, in bytes
	Encoding    string // "plain", or a chain like "base64", "url", "json-escape", "utf16le", "base64+utf16le"
	Preview     string // the surrounding line, redacted; never contains the secret
}

// maxDepth bounds nested decoding (base64 of UTF-16 of ...).
const maxDepth = 3

// previewMax is the longest preview in bytes.
const previewMax = 200

// redaction replaces the non-public part of a secret in previews.
const redaction = "********"

// hit is a raw match: a span of the top-level document and the entry found.
type hit struct {
	off, end int
	e        *entry
	enc      string
}

// scanner holds the state of one Scan call.
type scanner struct {
	s    *Set
	hits []hit
	// runs, when record is set, collects the spans of top-level encoded
	// runs and PEM blocks examined, for ScanReader's chunk boundaries.
	record bool
	runs   [][2]int
	// scratch holds decoded buffers and joined base64 lines, and srcs the
	// source offsets of decoded escapes; both are used as stacks.
	scratch []byte
	srcs    []int32
	// more, if set, can give the scratch stack room outside the Go heap,
	// once per scan (see reserve).
	more func(n int) []byte
	// cand takes the candidate offsets of the filters. It lives here, not
	// on the stack, because a stack array is cleared at every call, and a
	// document's decoded runs make tens of thousands of nested calls. Each
	// use fills it and consumes it before any nested scan.
	cand [256]int32
}

func (sc *scanner) noteRun(depth, a, b int) {
	if sc.record && depth == 0 {
		sc.runs = append(sc.runs, [2]int{a, b})
	}
}

// Scan returns the findings of registered secrets in doc, ordered by offset.
// It is safe for concurrent use.
func (s *Set) Scan(doc []byte) []Finding { return s.scanWith(doc, nil) }

// scanWith is Scan with more, if not nil, to give the scratch stack room
// when it would outgrow scratchHeapMax (see reserve). The room stays the
// caller's: it must stay valid until scanWith returns, and is not kept.
func (s *Set) scanWith(doc []byte, more func(n int) []byte) []Finding {
	if s == nil || s.n == 0 {
		return nil
	}
	sc := s.scanner(false)
	defer sc.release()
	if more != nil {
		own := sc.scratch
		sc.more = more
		defer func() { sc.scratch, sc.more = own, nil }() // before release: never pool the caller's room
	}
	sc.level(doc, 0, "", nil)
	hits := sortHits(sc.hits)
	return s.findings(doc, hits, hits, posBase{})
}

// scanners keeps scanners, with their scratch stacks, between Scan calls.
// A scan of many small files would otherwise allocate fresh stacks for
// each one: garbage that touches new memory until a collection, and page
// faults cost more than the scanning they serve on some virtual machines.
var scanners = sync.Pool{New: func() any { return new(scanner) }}

// scanner takes a scanner for s from the pool; release returns it.
func (s *Set) scanner(record bool) *scanner {
	sc := scanners.Get().(*scanner)
	sc.s, sc.record = s, record
	return sc
}

// scratchHeapMax is the largest scratch stack kept on the Go heap when the
// scan has more.
const scratchHeapMax = 256 << 10

// reserve makes room for n more bytes on the scratch stack. A stack about
// to outgrow scratchHeapMax moves, the first time, to room from more, twice
// what it needs: megabytes of wrapped base64 are joined and decoded here,
// and fresh heap pages fault in one by one (GOROOT/src's 1.5 MB base64
// file took 700 faults, 20 ms of CPU on this VM). Slices already taken
// from the stack stay valid: the old memory is not freed while the scan
// runs.
func (sc *scanner) reserve(n int) {
	if cap(sc.scratch)-len(sc.scratch) >= n {
		return
	}
	if need := len(sc.scratch) + n; sc.more != nil && need > scratchHeapMax {
		more := sc.more
		sc.more = nil // once: more may replace the room it gave before
		if b := more(2 * need); len(b) >= need {
			sc.scratch = append(b[:0], sc.scratch...)
			return
		}
	}
	sc.scratch = slices.Grow(sc.scratch, n)
}

func (sc *scanner) release() {
	clear(sc.hits) // drop the entry pointers, which would pin an old Set
	sc.hits, sc.runs = sc.hits[:0], sc.runs[:0]
	sc.scratch, sc.srcs = sc.scratch[:0], sc.srcs[:0]
	// One large document must not pin megabytes in the pool.
	if cap(sc.scratch) > scratchHeapMax {
		sc.scratch = nil
	}
	if cap(sc.srcs) > scratchHeapMax/4 {
		sc.srcs = nil
	}
	sc.s = nil
	scanners.Put(sc)
}

// spanMap maps a span of a decoded buffer to a span of the top-level
// document. nil means identity.
type spanMap func(a, b int) (int, int, bool)

// level scans buf, found at nesting depth depth through encoding chain enc.
func (sc *scanner) level(buf []byte, depth int, enc string, m spanMap) {
	emit := func(a, b int, e *entry, how string) {
		off, end := a, b
		if m != nil {
			var ok bool
			if off, end, ok = m(a, b); !ok {
				return
			}
		}
		sc.hits = append(sc.hits, hit{off: off, end: end, e: e, enc: chain(enc, how)})
	}
	plainEmit := func(a, b int, e *entry) { emit(a, b, e, "") }
	sc.tokenPass(buf, depth, enc, m, true, plainEmit)
	sc.s.scanPlain(buf, &sc.cand, plainEmit)
	if sc.s.hasPEM {
		sc.scanPEM(buf, depth, emit)
	}
	if depth < maxDepth && len(buf) >= sc.s.minLen {
		sc.decodeRuns(buf, depth, enc, m)
	}
}

func chain(enc, how string) string {
	switch {
	case enc == "" && how == "":
		return "plain"
	case enc == "":
		return how
	case how == "":
		return enc
	}
	return enc + "+" + how
}

// scanPlain reports every registered secret whose exact bytes occur in buf.
//
// Token secrets ("t", nearly all real keys) can only start their window
// inside a run of 16 or more token characters, so for them the filter runs
// only over such runs, found 8 bytes at a time. Other secrets (passwords:
// "w", "u" and "s") need every offset. The hot loops (filterLong,
// filterShort, filterBoth) collect candidate offsets without calls, so
// their state stays in registers; candidates are confirmed afterwards with
// the full hash.
//
// The every-offset path is filterShort, one product and one filter an
// offset, unless long "s" fingerprints (made before kind "w" existed) are
// registered: their window hash needs the next word's product too, and
// filterBoth tests both filters.
func (s *Set) scanPlain(buf []byte, cand *[256]int32, emit func(a, b int, e *entry)) {
	if s.nLong+s.nShort+s.nWord == 0 {
		return
	}
	if s.nLong == 0 {
		for i := 0; i+8 <= len(buf); {
			var n int
			n, i = s.filterShort(buf, i, cand)
			s.verifyCands(buf, cand[:n], emit)
		}
		return
	}
	last := len(buf) - LongWindow
	for i := 0; i <= last; {
		var n int
		n, i = s.filterBoth(buf, i, cand)
		s.verifyCands(buf, cand[:n], emit)
	}
	if s.short != nil {
		// Offsets too close to the end for a long window still fit a short one.
		s.scanShort(buf, max(last+1, 0), emit)
	}
}

func (s *Set) verifyCands(buf []byte, cand []int32, emit func(a, b int, e *entry)) {
	for _, c := range cand {
		ci := int(c &^ (shortCand | prefCand))
		w := buf[ci:]
		if c&prefCand != 0 {
			h := windowLong(w)
			if m := bloomMask(h); s.pbloom[h>>s.pbloomSh]&m == m {
				s.verify(buf, ci, h, emit)
			}
			continue
		}
		if c&shortCand != 0 {
			s.verifyShort(buf, ci, le64(w)*winK, emit)
		} else {
			s.verify(buf, ci, windowLong(w), emit)
		}
	}
}

// tokenMask returns, for each byte of x, its high bit set iff the byte is a
// token character (letters, digits, "+-./=_~"): a branch-free SWAR test.
func tokenMask(x uint64) uint64 {
	t := x &^ high8
	f := t | 0x2020202020202020
	in := (f + (0x80-0x61)*ones8) &^ (f + (0x7f-0x7a)*ones8)  // letters
	in |= (t + (0x80-0x2b)*ones8) &^ (t + (0x7f-0x39)*ones8)  // + , - . / digits
	in &^= (t + (0x80-0x2c)*ones8) &^ (t + (0x7f-0x2c)*ones8) // not ','
	in |= (t + (0x80-0x3d)*ones8) &^ (t + (0x7f-0x3d)*ones8)  // =
	in |= (t + (0x80-0x5f)*ones8) &^ (t + (0x7f-0x5f)*ones8)  // _
	in |= (t + (0x80-0x7e)*ones8) &^ (t + (0x7f-0x7e)*ones8)  // ~
	return in &^ x & high8
}

// tokenEnd returns the end of the token run containing buf[i] (i itself if
// buf[i] is not a token character), 8 bytes at a time.
func tokenEnd(buf []byte, i int) int {
	for i+8 <= len(buf) {
		m := tokenMask(le64(buf[i:]))
		if m != high8 {
			return i + bits.TrailingZeros64(^m&high8)/8
		}
		i += 8
	}
	for i < len(buf) && tokenByte[buf[i]] {
		i++
	}
	return i
}

// tokenPass walks the runs of token characters in buf: it runs the token
// filter over runs long enough to hold a token secret, and hands base64
// stretches to the decoder. Any run of stride+7 or more bytes contains one
// of the 8-byte words tested, at every stride-th byte, so the stride is as
// long as the shortest run of interest allows (up to 16).
func (sc *scanner) tokenPass(buf []byte, depth int, enc string, m spanMap, plain bool, emit func(a, b int, e *entry)) {
	s := sc.s
	plain = plain && s.nToken > 0
	decode := depth < maxDepth && len(buf) >= s.minLen
	if !plain && !decode {
		return
	}
	minRun := max(minB64Run, (s.minLen*4+2)/3)
	shortest := 1 << 30
	if plain {
		shortest = s.minToken
	}
	if decode {
		shortest = min(shortest, minRun, minWrapLine)
	}
	stride := min(max(shortest-7, 8), 16)
	b64From := 0 // base64 before this was joined into an earlier run
	cand := &sc.cand
	n := len(buf)
	for w := 0; w+8 <= n; w += stride {
		x := le64(buf[w:])
		// Most words of text hold a space, newline, quote or bracket (a byte
		// below '+'): a three-operation test rejects them first.
		if (x-0x2b*ones8)&^x&high8 != 0 || tokenMask(x) != high8 {
			continue
		}
		// The run starts inside the previous word: that word either failed
		// the test or ended the previous run, so count its token bytes.
		rs := w
		if w >= 8 {
			rs -= bits.LeadingZeros64(^tokenMask(le64(buf[w-8:]))&high8) / 8
		}
		for rs > 0 && rs <= w-8 && tokenByte[buf[rs-1]] {
			rs-- // the previous word was not tested
		}
		re := tokenEnd(buf, w+8)
		w = re + 1 - stride // the next run starts after re
		if plain && re-rs >= s.minToken {
			// A window starts at least minBody bytes before the end of its
			// secret, and so of the run.
			end := re - s.minBody + LongWindow
			for i := rs; i <= end-LongWindow; {
				var k int
				k, i = filterLong(buf, i, end, s.tbloom, s.tbloomSh, s.psuf, cand)
				s.verifyCands(buf, cand[:k], emit)
			}
		}
		if decode && (re-rs >= minRun || re-rs >= minWrapLine && skipLineBreak(buf, re) != re) {
			for a := max(rs, b64From); a < re; {
				z := a
				for z < re && b64val[buf[z]] != 0xff {
					z++
				}
				if z-a >= 4 {
					b64From = sc.base64Run(buf, a, z, depth, enc, m, minRun)
				}
				a = z + 1
			}
		}
	}
}

// shortCand marks a candidate offset for the short window.
const shortCand = 1 << 30

// prefCand marks a candidate offset found only by the prefix test: the two
// bytes before it end a provider prefix in use, so the window may be a
// prefixed token's; the prefixed-token filter is checked when verifying.
const prefCand = 1 << 29

func candFlag(pref bool) int32 {
	if pref {
		return prefCand
	}
	return 0
}

// filterLong probes the long-window filter at offsets from i on, stopping
// when cand is nearly full or at the end. It returns the number of
// candidates and the next offset.
//
// The window hash at offset i combines the products of the words at i and
// i+8; each product is computed once and used twice (blocks of 8 offsets),
// so the loop costs one multiplication per byte.
//
// With psuf (token runs with prefixed tokens registered), bloom holds only
// the tokens without a prefix, and an offset is also a candidate when the
// two bytes before it end a registered prefix: a lookup in an 8 KiB bitmap
// that stays in L1, where the prefixed tokens' filter (most of a large
// registry) would be a cache miss at every offset.
func filterLong(buf []byte, i, end int, bloom []uint64, sh uint, psuf *[1024]uint64, cand *[256]int32) (int, int) {
	n := 0
	last := end - LongWindow
	wmask := uint64(len(bloom) - 1)
	pre := psuf != nil
	for ; i < 2 && i <= last && n < len(cand); i++ {
		if hit, suf := probe1(buf, i, bloom, sh, psuf); hit || suf {
			cand[n] = int32(i) | candFlag(suf && !hit)
			n++
		}
	}
	if i+24 <= end {
		// Unrolled by hand: Go does not unroll loops, and loop overhead and
		// bounds checks would otherwise cost as much as the work itself.
		w := buf[i : i+16 : i+16]
		c0 := le64(w[0:]) * winK
		c1 := le64(w[1:]) * winK
		c2 := le64(w[2:]) * winK
		c3 := le64(w[3:]) * winK
		c4 := le64(w[4:]) * winK
		c5 := le64(w[5:]) * winK
		c6 := le64(w[6:]) * winK
		c7 := le64(w[7:]) * winK
		for ; i+24 <= end && n <= len(cand)-8; i += 8 {
			w := buf[i+8 : i+24 : i+24]
			var pw, p7 uint64
			if pre {
				b := buf[i-2 : i+7 : i+7]
				pw = le64(b)
				p7 = uint64(b[7]) | uint64(b[8])<<8
			}
			var h, x uint64
			var hit, suf bool
			c0, h = le64(w[0:])*winK, c0
			h = (h ^ c0>>1) >> 24
			x = bloom[(h>>sh)&wmask]
			hit = x>>(h&63)&(x>>((h>>6)&63))&(x>>((h>>12)&63))&1 != 0
			suf = pre && psuf[(pw>>0&0xffff)>>6]>>((pw>>0&0xffff)&63)&1 != 0
			if hit || suf {
				cand[n] = int32(i+0) | candFlag(suf && !hit)
				n++
			}
			c1, h = le64(w[1:])*winK, c1
			h = (h ^ c1>>1) >> 24
			x = bloom[(h>>sh)&wmask]
			hit = x>>(h&63)&(x>>((h>>6)&63))&(x>>((h>>12)&63))&1 != 0
			suf = pre && psuf[(pw>>8&0xffff)>>6]>>((pw>>8&0xffff)&63)&1 != 0
			if hit || suf {
				cand[n] = int32(i+1) | candFlag(suf && !hit)
				n++
			}
			c2, h = le64(w[2:])*winK, c2
			h = (h ^ c2>>1) >> 24
			x = bloom[(h>>sh)&wmask]
			hit = x>>(h&63)&(x>>((h>>6)&63))&(x>>((h>>12)&63))&1 != 0
			suf = pre && psuf[(pw>>16&0xffff)>>6]>>((pw>>16&0xffff)&63)&1 != 0
			if hit || suf {
				cand[n] = int32(i+2) | candFlag(suf && !hit)
				n++
			}
			c3, h = le64(w[3:])*winK, c3
			h = (h ^ c3>>1) >> 24
			x = bloom[(h>>sh)&wmask]
			hit = x>>(h&63)&(x>>((h>>6)&63))&(x>>((h>>12)&63))&1 != 0
			suf = pre && psuf[(pw>>24&0xffff)>>6]>>((pw>>24&0xffff)&63)&1 != 0
			if hit || suf {
				cand[n] = int32(i+3) | candFlag(suf && !hit)
				n++
			}
			c4, h = le64(w[4:])*winK, c4
			h = (h ^ c4>>1) >> 24
			x = bloom[(h>>sh)&wmask]
			hit = x>>(h&63)&(x>>((h>>6)&63))&(x>>((h>>12)&63))&1 != 0
			suf = pre && psuf[(pw>>32&0xffff)>>6]>>((pw>>32&0xffff)&63)&1 != 0
			if hit || suf {
				cand[n] = int32(i+4) | candFlag(suf && !hit)
				n++
			}
			c5, h = le64(w[5:])*winK, c5
			h = (h ^ c5>>1) >> 24
			x = bloom[(h>>sh)&wmask]
			hit = x>>(h&63)&(x>>((h>>6)&63))&(x>>((h>>12)&63))&1 != 0
			suf = pre && psuf[(pw>>40&0xffff)>>6]>>((pw>>40&0xffff)&63)&1 != 0
			if hit || suf {
				cand[n] = int32(i+5) | candFlag(suf && !hit)
				n++
			}
			c6, h = le64(w[6:])*winK, c6
			h = (h ^ c6>>1) >> 24
			x = bloom[(h>>sh)&wmask]
			hit = x>>(h&63)&(x>>((h>>6)&63))&(x>>((h>>12)&63))&1 != 0
			suf = pre && psuf[(pw>>48&0xffff)>>6]>>((pw>>48&0xffff)&63)&1 != 0
			if hit || suf {
				cand[n] = int32(i+6) | candFlag(suf && !hit)
				n++
			}
			c7, h = le64(w[7:])*winK, c7
			h = (h ^ c7>>1) >> 24
			x = bloom[(h>>sh)&wmask]
			hit = x>>(h&63)&(x>>((h>>6)&63))&(x>>((h>>12)&63))&1 != 0
			suf = pre && psuf[(p7)>>6]>>((p7)&63)&1 != 0
			if hit || suf {
				cand[n] = int32(i+7) | candFlag(suf && !hit)
				n++
			}
		}
	}
	for ; i <= last && n < len(cand); i++ {
		if hit, suf := probe1(buf, i, bloom, sh, psuf); hit || suf {
			cand[n] = int32(i) | candFlag(suf && !hit)
			n++
		}
	}
	return n, i
}

// probe1 is one offset of filterLong: a filter hit, and a prefix hit.
func probe1(buf []byte, i int, bloom []uint64, sh uint, psuf *[1024]uint64) (hit, suf bool) {
	h := windowLong(buf[i : i+16 : i+16])
	m := bloomMask(h)
	hit = bloom[(h>>sh)&uint64(len(bloom)-1)]&m == m
	if psuf != nil && i >= 2 {
		pair := uint64(buf[i-2]) | uint64(buf[i-1])<<8
		suf = psuf[pair>>6]>>(pair&63)&1 != 0
	}
	return hit, suf
}

// pre is the every-offset path's first stage: two Bloom filters of 2^20
// bits, each fingerprint setting two bits in one 64-bit word, from the top
// 26 bits of its window hash (long "s" windows in long; short windows and
// the top 32 bits of long "w" and "u" ones in short). 128 KiB each, they
// stay in L2, and their fixed size lets the compiler drop every bounds
// check and mask: testing one at an offset costs one multiplication, a
// load and a few shifts. An offset that passes is tested against the
// exact filters: on the realistic benchmark's text, one offset in a few
// hundred with 50,000 passwords. At 32 KiB (L1) the filters held 5,000
// passwords as well but passed one offset in ten with 50,000, and the
// million-fingerprint benchmark ran 15% slower (measured).
// A bit of pre reveals nothing that the window hash it is taken from does not.
type pre struct {
	long, short prefilter
}

type prefilter [16384]uint64

func (p *prefilter) add(x uint64) { p[x>>50] |= 1<<(x>>44&63) | 1<<(x>>38&63) }

// has tests the product-aligned hash x (its top 26 bits).
func (p *prefilter) has(x uint64) bool {
	w := p[x>>50]
	return w>>(x>>44&63)&(w>>(x>>38&63))&1 != 0
}

func (p *pre) add(key uint64) {
	if key&shortKeyBit != 0 {
		p.short.add(key << 32) // a short window hash is the top 32 bits of a product
	} else {
		p.long.add(key << 24) // a long one the top 40 bits
	}
}

// filterBoth is the every-offset path, taken while secrets of kind "s" or
// short ones are registered: it collects the offsets from i on whose long
// or short window passes the filters, stopping when cand is nearly full or
// at the end, and returns the number of candidates and the next offset.
//
// The short window hash at an offset is the top 32 bits of c, the product
// of the word there, which is also the first half of the long window hash:
// one multiplication per offset serves both.
func (s *Set) filterBoth(buf []byte, i int, cand *[256]int32) (int, int) {
	n := 0
	end := len(buf)
	last := end - LongWindow
	pl, ps := &s.pre.long, &s.pre.short // the loop below inlines prefilter.has by hand
	if i+24 <= end {
		// Unrolled by hand, as in filterLong.
		w := buf[i : i+16 : i+16]
		c0 := le64(w[0:]) * winK
		c1 := le64(w[1:]) * winK
		c2 := le64(w[2:]) * winK
		c3 := le64(w[3:]) * winK
		c4 := le64(w[4:]) * winK
		c5 := le64(w[5:]) * winK
		c6 := le64(w[6:]) * winK
		c7 := le64(w[7:]) * winK
		for ; i+24 <= end && n <= len(cand)-16; i += 8 {
			w := buf[i+8 : i+24 : i+24]
			var d, h uint64
			d = le64(w[0:]) * winK
			h = c0 ^ d>>1
			if xl, xs := pl[h>>50], ps[c0>>50]; xl>>(h>>44&63)&(xl>>(h>>38&63))&1|xs>>(c0>>44&63)&(xs>>(c0>>38&63))&1 != 0 {
				n = s.both(i+0, c0, h, cand, n)
			}
			c0 = d
			d = le64(w[1:]) * winK
			h = c1 ^ d>>1
			if xl, xs := pl[h>>50], ps[c1>>50]; xl>>(h>>44&63)&(xl>>(h>>38&63))&1|xs>>(c1>>44&63)&(xs>>(c1>>38&63))&1 != 0 {
				n = s.both(i+1, c1, h, cand, n)
			}
			c1 = d
			d = le64(w[2:]) * winK
			h = c2 ^ d>>1
			if xl, xs := pl[h>>50], ps[c2>>50]; xl>>(h>>44&63)&(xl>>(h>>38&63))&1|xs>>(c2>>44&63)&(xs>>(c2>>38&63))&1 != 0 {
				n = s.both(i+2, c2, h, cand, n)
			}
			c2 = d
			d = le64(w[3:]) * winK
			h = c3 ^ d>>1
			if xl, xs := pl[h>>50], ps[c3>>50]; xl>>(h>>44&63)&(xl>>(h>>38&63))&1|xs>>(c3>>44&63)&(xs>>(c3>>38&63))&1 != 0 {
				n = s.both(i+3, c3, h, cand, n)
			}
			c3 = d
			d = le64(w[4:]) * winK
			h = c4 ^ d>>1
			if xl, xs := pl[h>>50], ps[c4>>50]; xl>>(h>>44&63)&(xl>>(h>>38&63))&1|xs>>(c4>>44&63)&(xs>>(c4>>38&63))&1 != 0 {
				n = s.both(i+4, c4, h, cand, n)
			}
			c4 = d
			d = le64(w[5:]) * winK
			h = c5 ^ d>>1
			if xl, xs := pl[h>>50], ps[c5>>50]; xl>>(h>>44&63)&(xl>>(h>>38&63))&1|xs>>(c5>>44&63)&(xs>>(c5>>38&63))&1 != 0 {
				n = s.both(i+5, c5, h, cand, n)
			}
			c5 = d
			d = le64(w[6:]) * winK
			h = c6 ^ d>>1
			if xl, xs := pl[h>>50], ps[c6>>50]; xl>>(h>>44&63)&(xl>>(h>>38&63))&1|xs>>(c6>>44&63)&(xs>>(c6>>38&63))&1 != 0 {
				n = s.both(i+6, c6, h, cand, n)
			}
			c6 = d
			d = le64(w[7:]) * winK
			h = c7 ^ d>>1
			if xl, xs := pl[h>>50], ps[c7>>50]; xl>>(h>>44&63)&(xl>>(h>>38&63))&1|xs>>(c7>>44&63)&(xs>>(c7>>38&63))&1 != 0 {
				n = s.both(i+7, c7, h, cand, n)
			}
			c7 = d
		}
	}
	for ; i <= last && n < len(cand)-1; i++ {
		w := buf[i : i+16 : i+16]
		c := le64(w) * winK
		if h := c ^ (le64(w[8:])*winK)>>1; pl.has(h) || ps.has(c) {
			n = s.both(i, c, h, cand, n)
		}
	}
	return n, i
}

// both is filterBoth's second stage at offset i: it records the offset as
// a candidate for each exact filter its windows pass. c is the product of
// the word at i, h the long window hash before its final shift.
func (s *Set) both(i int, c, h uint64, cand *[256]int32, n int) int {
	h >>= 24
	if m := bloomMask(h); s.bloom[(h>>s.bloomSh)&uint64(len(s.bloom)-1)]&m == m {
		cand[n&255] = int32(i)
		n++
	}
	if s.short != nil && s.shortHas(c) {
		cand[n&255] = int32(i) | shortCand
		n++
	}
	return n
}

// sparseShort is how many fingerprints the short filter holds at most for
// filterShort to decide a block of eight offsets on one bit each: 2% of
// the filter's bits are then set, and a block passes about one time in
// six (measured: 100k with 5% passwords 310 -> 338 MB/s, with 10% 302 ->
// 340; with 50,000, a block passed every other time and it was slower).
const sparseShort = 1 << 14

// filterShort is the every-offset path while no long "s" secret is
// registered: every window is an offset's own 8 bytes, its hash the top 32
// (short) or 40 (long "w" and "u") bits of their product, so an offset needs
// one multiplication and a test of the short-window filters, which hold the
// top 32 bits of both.
func (s *Set) filterShort(buf []byte, i int, cand *[256]int32) (int, int) {
	n := 0
	ps := &s.pre.short
	sparse := s.nShort+s.nWord <= sparseShort
	// Eight offsets a step, their tests combined into one branch: the
	// products are independent, and a branch per offset cost a third more.
	for ; i+15 <= len(buf) && n <= len(cand)-8; i += 8 {
		w := buf[i : i+15 : i+15]
		c0, c1, c2, c3 := le64(w[0:])*winK, le64(w[1:])*winK, le64(w[2:])*winK, le64(w[3:])*winK
		c4, c5, c6, c7 := le64(w[4:])*winK, le64(w[5:])*winK, le64(w[6:])*winK, le64(w[7:])*winK
		x0, x1, x2, x3 := ps[c0>>50], ps[c1>>50], ps[c2>>50], ps[c3>>50]
		x4, x5, x6, x7 := ps[c4>>50], ps[c5>>50], ps[c6>>50], ps[c7>>50]
		// While the filter is sparse, one of each offset's two bits
		// decides the block; the offsets of a passing block test both.
		if sparse {
			if (x0>>(c0>>44&63)|x1>>(c1>>44&63)|x2>>(c2>>44&63)|x3>>(c3>>44&63)|
				x4>>(c4>>44&63)|x5>>(c5>>44&63)|x6>>(c6>>44&63)|x7>>(c7>>44&63))&1 == 0 {
				continue
			}
		} else if x0>>(c0>>44&63)&(x0>>(c0>>38&63))&1|x1>>(c1>>44&63)&(x1>>(c1>>38&63))&1|
			x2>>(c2>>44&63)&(x2>>(c2>>38&63))&1|x3>>(c3>>44&63)&(x3>>(c3>>38&63))&1|
			x4>>(c4>>44&63)&(x4>>(c4>>38&63))&1|x5>>(c5>>44&63)&(x5>>(c5>>38&63))&1|
			x6>>(c6>>44&63)&(x6>>(c6>>38&63))&1|x7>>(c7>>44&63)&(x7>>(c7>>38&63))&1 == 0 {
			continue
		}
		for k, c := range [8]uint64{c0, c1, c2, c3, c4, c5, c6, c7} {
			if ps.has(c) && s.shortHas(c) {
				cand[n&255] = int32(i+k) | shortCand
				n++
			}
		}
	}
	for ; i+8 <= len(buf) && n < len(cand); i++ {
		if c := le64(buf[i:i+8:i+8]) * winK; ps.has(c) && s.shortHas(c) {
			cand[n] = int32(i) | shortCand
			n++
		}
	}
	return n, i
}

func (s *Set) scanShort(buf []byte, from int, emit func(a, b int, e *entry)) {
	for i := from; i+8 <= len(buf); i++ {
		if c := le64(buf[i:]) * winK; s.shortHas(c) {
			s.verifyShort(buf, i, c, emit)
		}
	}
}

// verifyShort confirms the short-window candidates at i, whose product is
// c: the entries with a 32-bit window hash, and the long "w" and "u" ones.
func (s *Set) verifyShort(buf []byte, i int, c uint64, emit func(a, b int, e *entry)) {
	if s.nShort > 0 {
		s.verify(buf, i, c>>32|shortKeyBit, emit)
	}
	if s.nWord > 0 {
		s.verify(buf, i, c>>24|wordKeyBit, emit)
	}
}

// verify confirms candidates whose window starts at i and hashes to key.
func (s *Set) verify(buf []byte, i int, key uint64, emit func(a, b int, e *entry)) {
	j := s.lookup(key)
	if j < 0 {
		return
	}
	for ; j < len(s.entries) && s.entries[j].key == key; j++ {
		e := &s.entries[j]
		p := e.prefixString()
		start := i - len(p)
		end := start + int(e.length)
		if start < 0 || end > len(buf) || string(buf[start:i]) != p {
			continue
		}
		if hashSecret(buf[start:end]) == e.hash {
			emit(start, end, e)
		}
	}
}

// scanPEM finds private-key PEM blocks in buf and checks their bodies.
func (sc *scanner) scanPEM(buf []byte, depth int, emit func(a, b int, e *entry, how string)) {
	for from := 0; ; {
		body, start, end, ok := pemBlock(buf, from)
		if end > start {
			sc.noteRun(depth, start, end)
		}
		if !ok {
			if end > start {
				from = start + len(pemBegin)
				continue
			}
			return
		}
		if e := sc.s.pem[hashPEM(body)]; e != nil && len(body) == int(e.length) {
			how := ""
			if bytes.Contains(buf[start:end], []byte(`\n`)) {
				how = "json-escape"
			}
			emit(start, end, e, how)
		}
		from = end
	}
}

// sortHits orders hits by offset and drops duplicates of the same entry at
// the same place (found through two routes).
func sortHits(h []hit) []hit {
	slices.SortStableFunc(h, func(a, b hit) int {
		if a.off != b.off {
			return a.off - b.off
		}
		return a.end - b.end
	})
	out := h[:0]
	for _, x := range h {
		dup := false
		for k := len(out) - 1; k >= 0 && out[k].off == x.off; k-- {
			if out[k].e == x.e {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, x)
		}
	}
	return out
}

// posBase places a buffer inside a larger stream: the stream offset of
// buf[0], the number of newlines before it, and the stream offset just past
// the last newline before it.
type posBase struct {
	off       int
	line      int
	lineStart int
}

// findings turns sorted hits in doc into Findings with positions and
// previews in which every hit of all is redacted.
func (s *Set) findings(doc []byte, hits, all []hit, base posBase) []Finding {
	if len(hits) == 0 {
		return nil
	}
	out := make([]Finding, 0, len(hits))
	line := base.line // newlines before doc[pos]
	pos := 0
	for _, h := range hits {
		line += bytes.Count(doc[pos:h.off], []byte{'\n'})
		pos = h.off
		ls := bytes.LastIndexByte(doc[:h.off], '\n') + 1
		col := h.off - ls + 1
		if ls == 0 {
			col = base.off + h.off - base.lineStart + 1
		}
		f := h.e.fingerprint()
		out = append(out, Finding{
			Fingerprint: f.String(),
			Provider:    f.Provider(),
			Offset:      base.off + h.off,
			Length:      h.end - h.off,
			Line:        line + 1,
			Column:      col,
			Encoding:    h.enc,
			Preview:     preview(doc, h, all),
		})
	}
	return out
}

// preview returns the line around h, at most previewMax bytes, valid UTF-8,
// with every hit on it replaced by its public prefix and asterisks.
func preview(doc []byte, h hit, all []hit) string {
	ls := bytes.LastIndexByte(doc[:h.off], '\n') + 1
	le := len(doc)
	if i := bytes.IndexByte(doc[h.off:], '\n'); i >= 0 {
		le = h.off + i
	}
	if le > ls && doc[le-1] == '\r' && le-1 >= h.off {
		le--
	}
	end := min(h.end, le)
	rep := h.e.prefixString() + redaction
	budget := previewMax - len(rep)
	left := min(h.off-ls, budget/2)
	right := min(le-end, budget-left)
	left = min(h.off-ls, budget-right)
	ws, we := h.off-left, end+right
	// Cut on rune boundaries.
	for ws < h.off && !utf8.RuneStart(doc[ws]) {
		ws++
	}
	for we > end && we < len(doc) && !utf8.RuneStart(doc[we]) {
		we--
	}
	var l, r strings.Builder
	writeRedacted(&l, doc, ws, h.off, all)
	writeRedacted(&r, doc, end, we, all)
	// Other secrets on the line (an AWS secret key after its registered
	// key ID, a password, a bearer token) are masked too.
	left2 := maskPreview(cleanPreview(l.String()), ws > ls, false)
	right2 := maskPreview(cleanPreview(r.String()), false, we < le)
	// Masks of other hits may be longer than the bytes they hide: trim
	// again, on rune boundaries.
	for len(left2)+len(rep)+len(right2) > previewMax {
		if len(left2) >= len(right2) {
			_, n := utf8.DecodeRuneInString(left2)
			left2 = left2[n:]
		} else {
			_, n := utf8.DecodeLastRuneInString(right2)
			right2 = right2[:len(right2)-n]
		}
	}
	return left2 + rep + right2
}

// writeRedacted writes doc[a:b] with any hit overlapping it masked.
func writeRedacted(b *strings.Builder, doc []byte, a, z int, all []hit) {
	for a < z {
		next := z
		masked := false
		for _, o := range all {
			if o.off < z && o.end > a {
				if o.off <= a {
					masked = true
					next = min(o.end, z)
					b.WriteString(o.e.prefixString() + redaction)
					break
				}
				next = min(next, o.off)
			}
		}
		if !masked {
			b.Write(doc[a:next])
		}
		a = next
	}
}

// cleanPreview makes s printable: NULs (UTF-16 text) are dropped, other
// control characters become spaces, invalid UTF-8 becomes '?'.
func cleanPreview(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		switch {
		case r == 0:
			return -1
		case r == '\t':
			return r
		case r < 0x20 || r == 0x7f:
			return ' '
		}
		return r
	}, s)
}

// ScanWithScratch is Scan for a caller that owns memory the scanner may use
// as scratch: more(n), if not nil, returns at least n bytes outside the Go
// heap (leakwatch scan's prefaulted mappings), valid until the call returns.
func (s *Set) ScanWithScratch(doc []byte, more func(n int) []byte) []Finding {
	return s.scanWith(doc, more)
}
