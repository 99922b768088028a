package matcher

import (
	"bytes"
	"math/bits"
	"slices"
)

// bloomBitsPerEntry sizes the long-window filter: 32 bits per fingerprint
// with 3 probes in one 64-bit word gives about 0.1% false candidates.
const bloomBitsPerEntry = 32

// entry is the compact in-memory form of a fingerprint (32 bytes).
type entry struct {
	key    uint64 // window hash; bit 63 marks the 8-byte (short) window
	hash   [16]byte
	length uint32
	prefix uint8 // index into providers plus one; 0 for none
	kind   uint8
}

const shortKeyBit = 1 << 63

// wordKeyBit marks the 40-bit window hash of a long kind "w" or "u" entry
// (the top of the product of its first 8 bytes): a key space of its own. A
// short one's 32-bit hash is the same as a short kind "s" one's, so they
// share theirs.
const wordKeyBit = 1 << 62

func (e *entry) prefixString() string {
	if e.prefix == 0 {
		return ""
	}
	return providers[e.prefix-1].prefix
}

func (e *entry) fingerprint() Fingerprint {
	return Fingerprint{kind: e.kind, prefix: e.prefixString(), length: int(e.length), window: e.key &^ (shortKeyBit | wordKeyBit), hash: e.hash}
}

// Set is an immutable, concurrency-safe set of fingerprints to scan for.
// Build a new Set to add or remove fingerprints; NewSet is cheap enough to
// run on every registry change and swap the result in atomically.
type Set struct {
	entries []entry  // secret entries sorted by key
	slots   []uint32 // open addressing over entries: index+1 of a key's first entry
	slotSh  uint     // slot index = mix(key) >> slotSh

	bloom    []uint64 // blocked Bloom filter over 40-bit hashes of "s" windows
	bloomSh  uint     // word index = h >> bloomSh
	tbloom   []uint64 // the same over "t" (token) windows without a prefix
	tbloomSh uint
	pbloom   []uint64 // the same over prefixed "t" windows
	pbloomSh uint
	psuf     *[1024]uint64 // last two bytes of the prefixes of pbloom's entries; nil if none

	short   []uint64 // bitset over 32-bit short-window hashes; nil if none
	shortSh uint
	pre     *pre // first stage of the every-offset path; nil without "s", "w" or "u" entries

	pem map[[16]byte]*entry

	n         int
	nLong     int // "s" entries with a 16-byte window
	nToken    int // "t" entries
	nShort    int // entries with an 8-byte window hashed to 32 bits ("s", "w" or "u")
	nWord     int // long "w" and "u" entries: 8-byte window, 40 bits
	nUnknown  int // "s" and "u" entries: secrets that may hold bytes outside ASCII
	minLen    int // shortest registered secret or PEM body
	maxLen    int
	minPlain  int // shortest non-PEM secret; 0 if none
	minToken  int // shortest "t" secret; 0 if none
	minBody   int // shortest "t" secret less its prefix: windows end this far before a run's end
	hasPEM    bool
	asciiOnly bool // no "s" or "u" entries: every secret is known to be ASCII
	prefixLen int  // longest provider prefix in use
}

// NewSet builds a Set from fps. Duplicates collapse. It sorts rather than
// hashing, so a million fingerprints build in well under a second.
func NewSet(fps []Fingerprint) *Set {
	s := &Set{pem: map[[16]byte]*entry{}}
	s.entries = make([]entry, 0, len(fps))
	for _, f := range fps {
		if f.length == 0 {
			continue // zero Fingerprint
		}
		e := entry{hash: f.hash, length: uint32(f.length), kind: f.kind, prefix: prefixIndex[f.prefix]}
		if f.kind == kindPEM {
			if _, dup := s.pem[e.hash]; !dup {
				s.pem[e.hash] = &e
				s.n++
				s.noteLen(f)
			}
			continue
		}
		e.key = f.window
		if !f.long() {
			e.key |= shortKeyBit
		}
		if wordKind(f.kind) && f.long() {
			e.key |= wordKeyBit
		}
		s.entries = append(s.entries, e)
	}
	slices.SortFunc(s.entries, compareEntries)
	s.entries = slices.CompactFunc(s.entries, func(a, b entry) bool { return compareEntries(a, b) == 0 })
	s.entries = slices.Clip(s.entries)
	for i := range s.entries {
		e := &s.entries[i]
		s.n++
		f := e.fingerprint()
		s.noteLen(f)
		if s.minPlain == 0 || f.length < s.minPlain {
			s.minPlain = f.length
		}
		s.prefixLen = max(s.prefixLen, len(f.prefix))
		if e.kind == kindSecret || e.kind == kindWordUTF8 {
			s.nUnknown++
		}
		switch {
		case e.key&wordKeyBit != 0:
			s.nWord++
		case e.key&shortKeyBit != 0:
			s.nShort++
		case e.kind == kindToken:
			s.nToken++
			if s.minToken == 0 || f.length < s.minToken {
				s.minToken = f.length
			}
			if b := f.length - len(f.prefix); s.minBody == 0 || b < s.minBody {
				s.minBody = b
			}
		default:
			s.nLong++
		}
	}
	s.hasPEM = len(s.pem) > 0
	s.asciiOnly = s.nUnknown == 0
	s.buildIndex()
	return s
}

func (s *Set) noteLen(f Fingerprint) {
	if s.minLen == 0 || f.length < s.minLen {
		s.minLen = f.length
	}
	s.maxLen = max(s.maxLen, f.length)
}

// compareEntries orders entries by key first (lookups scan a key's entries
// in order), then by every other field, so equal entries are adjacent.
func compareEntries(a, b entry) int {
	if a.key != b.key {
		if a.key < b.key {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(a.hash[:], b.hash[:]); c != 0 {
		return c
	}
	if a.length != b.length {
		return int(a.length) - int(b.length)
	}
	if a.prefix != b.prefix {
		return int(a.prefix) - int(b.prefix)
	}
	return int(a.kind) - int(b.kind)
}

func (s *Set) buildIndex() {
	// Hash table: power of two slots, at most half full.
	nb := 4
	for nb < 2*len(s.entries) {
		nb <<= 1
	}
	s.slots = make([]uint32, nb)
	s.slotSh = uint(64 - bits.TrailingZeros(uint(nb)))
	for i := range s.entries {
		if i > 0 && s.entries[i-1].key == s.entries[i].key {
			continue
		}
		j := mixKey(s.entries[i].key) >> s.slotSh
		for s.slots[j] != 0 {
			j = (j + 1) & uint64(nb-1)
		}
		s.slots[j] = uint32(i + 1)
	}

	s.bloom, s.bloomSh = newBloom(s.nLong)
	nPref := 0
	for i := range s.entries {
		if e := &s.entries[i]; e.kind == kindToken && e.key&shortKeyBit == 0 && e.prefix != 0 {
			nPref++
		}
	}
	s.tbloom, s.tbloomSh = newBloom(s.nToken - nPref)
	s.pbloom, s.pbloomSh = newBloom(nPref)
	if nPref > 0 {
		s.psuf = new([1024]uint64)
	}
	// Short-window bitset: 2^B bits, B in [10, 27], about 64 bits per entry.
	if nShort := s.nShort + s.nWord; nShort > 0 {
		b := 10
		for b < 27 && 1<<b < 64*nShort {
			b++
		}
		s.short = make([]uint64, 1<<(b-6))
		s.shortSh = uint(32 - b)
	}
	if s.nLong+s.nShort+s.nWord > 0 {
		s.pre = new(pre)
	}
	for i := range s.entries {
		k := s.entries[i].key
		if k&wordKeyBit != 0 {
			// The short-window filters hold the top 32 bits of the product.
			k = (k&^wordKeyBit)>>8 | shortKeyBit
		}
		if e := &s.entries[i]; k&shortKeyBit != 0 || e.kind != kindToken {
			s.pre.add(k)
		}
		if k&shortKeyBit != 0 {
			h := (k &^ shortKeyBit) >> s.shortSh
			s.short[h>>6] |= 1 << (h & 63)
			continue
		}
		switch e := &s.entries[i]; {
		case e.kind == kindToken && e.prefix != 0:
			s.pbloom[k>>s.pbloomSh] |= bloomMask(k)
			p := e.prefixString()
			pair := uint64(p[len(p)-2]) | uint64(p[len(p)-1])<<8
			s.psuf[pair>>6] |= 1 << (pair & 63)
		case e.kind == kindToken:
			s.tbloom[k>>s.tbloomSh] |= bloomMask(k)
		default:
			s.bloom[k>>s.bloomSh] |= bloomMask(k)
		}
	}
}

// newBloom sizes a long-window Bloom filter for n entries: 2^B bits, B in
// [12, 28], and returns it with its word-index shift.
func newBloom(n int) ([]uint64, uint) {
	b := 12
	for b < 28 && 1<<b < bloomBitsPerEntry*n {
		b++
	}
	return make([]uint64, 1<<(b-6)), uint(40 - (b - 6))
}

// bloomMask selects the three bits a 40-bit window hash sets in its word.
func bloomMask(h uint64) uint64 {
	return 1<<(h&63) | 1<<((h>>6)&63) | 1<<((h>>12)&63)
}

func mixKey(k uint64) uint64 { return (k ^ k>>29) * 0xBF58476D1CE4E5B9 }

// shortHas tests the exact short-window filter for the product c: its top
// 32 bits, a short window hash or the top of a long "w" or "u" one.
func (s *Set) shortHas(c uint64) bool {
	h := c >> 32 >> s.shortSh
	return s.short[(h>>6)&uint64(len(s.short)-1)]>>(h&63)&1 != 0
}

// lookup returns the index of the first entry with key k, or -1.
func (s *Set) lookup(k uint64) int {
	mask := uint64(len(s.slots) - 1)
	for j := mixKey(k) >> s.slotSh; ; j = (j + 1) & mask {
		v := s.slots[j]
		if v == 0 {
			return -1
		}
		if s.entries[v-1].key == k {
			return int(v - 1)
		}
	}
}

// Len returns the number of distinct fingerprints in the set.
func (s *Set) Len() int { return s.n }

// Fingerprints returns the set's fingerprints, secret entries first (in
// window-hash order), then PEM keys.
func (s *Set) Fingerprints() []Fingerprint {
	out := make([]Fingerprint, 0, s.n)
	for i := range s.entries {
		out = append(out, s.entries[i].fingerprint())
	}
	for _, e := range s.pem {
		out = append(out, e.fingerprint())
	}
	return out
}
