package matcher

import (
	"bytes"
	"encoding/binary"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// Encoded runs are found by cheap scans (an 8-bytes-at-a-time class test
// for base64, IndexByte for '%', '\\' and NUL) and only those runs are
// decoded and scanned again, recursively, up to maxDepth.

// b64val maps both the standard and the URL-safe alphabet to 6-bit values;
// 0xff marks other bytes.
var b64val = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(std); i++ {
		t[std[i]] = byte(i)
	}
	t['-'] = 62
	t['_'] = 63
	return t
}()

// minB64Run is the shortest base64 run decoded.
const minB64Run = 16

// minWrapLine is the shortest first line of a wrapped base64 run (shorter
// runs are decoded only when they are long enough on their own). Real
// wrapping is at 64 or 76; a floor of 23 lets the run finder test every
// 16th byte rather than every 8th unless a shorter secret is registered.
const minWrapLine = 23

const (
	ones8 = 0x0101010101010101
	high8 = 0x8080808080808080
)

// decodeRuns finds encoded runs in buf and scans their decoded contents.
func (sc *scanner) decodeRuns(buf []byte, depth int, enc string, m spanMap) {
	minDec := sc.s.minLen
	sc.escapeRuns(buf, depth, enc, m, '%', "url", minDec)
	sc.escapeRuns(buf, depth, enc, m, '\\', "json-escape", minDec)
	sc.utf16Runs(buf, depth, enc, m, minDec)
}

// child scans a decoded buffer. src, if not nil, maps each decoded byte
// (and the end) to its offset in parent; otherwise any hit maps to the
// whole run [rs, re). When exact, hits whose bytes are unchanged by the
// decoding are dropped: the parent finds those itself.
func (sc *scanner) child(dec []byte, src []int32, rs, re int, depth int, enc, how string, m spanMap) {
	cm := func(a, b int) (int, int, bool) {
		pa, pb := rs, re
		if src != nil {
			pa, pb = int(src[a]), int(src[b])
			if pb-pa == b-a && how != "utf16le" && how != "utf16be" {
				return 0, 0, false
			}
		}
		if m != nil {
			return m(pa, pb)
		}
		return pa, pb, true
	}
	sc.level(dec, depth+1, chain(enc, how), cm)
}

// base64Run handles the base64 stretch buf[rs:re] (found by tokenPass):
// it joins continuation lines of a wrapped run, then decodes the run if it
// is long enough and looks like base64. It returns the end of what it
// consumed, so joined continuation lines are not decoded again on their own.
func (sc *scanner) base64Run(buf []byte, rs, re, depth int, enc string, m spanMap, minRun int) int {
	n := len(buf)
	run := buf[rs:re]
	// nextLine returns the continuation line after end, if the run so far
	// (of length have) can go on there.
	nextLine := func(end, have int) (k, j int, ok bool) {
		if have%4 != 0 || have < 16 {
			return 0, 0, false
		}
		k = skipLineBreak(buf, end)
		if k == end {
			return 0, 0, false
		}
		j = k
		for j < n && b64val[buf[j]] != 0xff {
			j++
		}
		return k, j, j-k >= 4
	}
	// Measure the joined run first, then copy it once onto the scratch
	// stack with room for its decoding: growing by appends would copy a
	// megabyte-long wrapped run many times over.
	end, total := re, len(run)
	for {
		k, j, ok := nextLine(end, total)
		if !ok {
			break
		}
		total += j - k
		end = j
	}
	mark := len(sc.scratch)
	defer func() { sc.scratch = sc.scratch[:mark] }()
	if end > re {
		sc.reserve(total + total*3/4 + 2)
		sc.scratch = append(sc.scratch, run...)
		for e := re; e < end; {
			k, j, _ := nextLine(e, len(sc.scratch)-mark)
			sc.scratch = append(sc.scratch, buf[k:j]...)
			e = j
		}
		run = sc.scratch[mark:]
	}
	for p := 0; p < 2 && end < n && buf[end] == '='; p++ {
		end++
	}
	sc.noteRun(depth, rs, end)
	// The character gate in decodeB64 is the sharper test when it applies.
	if len(run) < minRun || !sc.s.asciiOnly && !mixedB64(run) {
		return end
	}
	sc.decodeB64(run, rs, end, depth, enc, m)
	// A run is maximal, so it starts after a non-base64 byte; it is only
	// misaligned when glue precedes the data inside it.
	switch {
	case rs > 0 && buf[rs-1] == '\\':
		sc.decodeB64(run[1:], rs+1, end, depth, enc, m) // "\nQUtJ..."
	default:
		// In a standard-alphabet run, '-' and '_' can only be glue
		// ("token-QUtJ..."): also start after the last one near the start.
		if k := bytes.LastIndexAny(run[:min(64, len(run))], "-_"); k >= 0 && bytes.ContainsAny(run, "+/") {
			sc.decodeB64(run[k+1:], rs+k+1, end, depth, enc, m)
		}
	}
	return end
}

// mixedB64 reports whether a run has both upper and lower case letters or
// digits, as base64 of anything longer than a few bytes does; it keeps
// paths and identifiers ("src/internal/bytealg") from being decoded.
func mixedB64(b []byte) bool {
	var up, low, dig bool
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= 'a' && c <= 'z':
			low = true
		case c >= '0' && c <= '9':
			dig = true
		}
		if up && (low || dig) {
			return true
		}
	}
	return false
}

// skipLineBreak returns the index after a line break at i ("\n", "\r\n", or
// the JSON escapes "\n", "\r\n") and any indentation; i if there is none.
func skipLineBreak(b []byte, i int) int {
	j := i
	switch {
	case j < len(b) && b[j] == '\n':
		j++
	case j+1 < len(b) && b[j] == '\r' && b[j+1] == '\n':
		j += 2
	case j+1 < len(b) && b[j] == '\\' && b[j+1] == 'n':
		j += 2
	case j+3 < len(b) && b[j] == '\\' && b[j+1] == 'r' && b[j+2] == '\\' && b[j+3] == 'n':
		j += 4
	default:
		return i
	}
	for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
		j++
	}
	return j
}

// b64High[p][c] reports whether base64 character c at position p (0-2) of
// its group gives a decoded byte at or above 0x80: the high bit of decoded
// byte p comes from value bit 5, 3 or 1 of character p alone.
var b64High = func() (t [3][256]bool) {
	for c := range 256 {
		v := b64val[c]
		if v == 0xff {
			continue
		}
		t[0][c] = v&32 != 0
		t[1][c] = v&8 != 0
		t[2][c] = v&2 != 0
	}
	return t
}()

// asciiStretch reports whether run, decoded at its natural alignment, can
// hold need consecutive bytes below 0x80, reading the characters only. Token
// secrets, PEM bodies and their encodings (UTF-16 of ASCII, base64, %- and
// JSON escapes) all need such a stretch; identifiers and other base64-alphabet
// words fail within a few characters, so they are never decoded.
func asciiStretch(run []byte, need int) bool {
	left := len(run) - len(run)/4 // characters at positions 0-2 still to read
	if left < need {
		return false
	}
	ok := 0
	for i, c := range run {
		p := i & 3
		if p == 3 {
			continue
		}
		left--
		if b64High[p][c] {
			ok = 0
			if left < need {
				return false
			}
		} else if ok++; ok >= need {
			return true
		}
	}
	return false
}

// decodeB64 decodes a run at its natural alignment, leniently (both
// alphabets, trailing partial group kept), and scans the result if it can
// hold a registered secret.
func (sc *scanner) decodeB64(run []byte, rs, re, depth int, enc string, m spanMap) {
	if sc.s.asciiOnly && !asciiStretch(run, sc.s.minLen) {
		return
	}
	mark := len(sc.scratch)
	sc.reserve(len(run)*3/4 + 2)
	dec := sc.scratch[mark:mark]
	var acc uint32
	nb := 0
	for _, c := range run {
		acc = acc<<6 | uint32(b64val[c]&63)
		nb++
		if nb == 4 {
			dec = append(dec, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, nb = 0, 0
		}
	}
	switch nb {
	case 2:
		dec = append(dec, byte(acc>>4))
	case 3:
		dec = append(dec, byte(acc>>10), byte(acc>>2))
	}
	sc.scratch = sc.scratch[:mark+len(dec)]
	if sc.mayHold(dec) {
		sc.child(dec, nil, rs, re, depth, enc, "base64", m)
	}
	sc.scratch = sc.scratch[:mark]
}

// mayHold reports whether decoded bytes can hold a registered secret, or an
// encoding of one: a stretch of minLen text bytes (printable ASCII or valid
// UTF-8), or of minLen UTF-16 units. Decoded identifiers ("OpAMD64VPMAX...")
// are binary garbage and fail fast.
func (sc *scanner) mayHold(dec []byte) bool {
	need := sc.s.minLen
	if len(dec) < need {
		return false
	}
	text, u16 := 0, 0
	for i := 0; i < len(dec); {
		c := dec[i]
		switch {
		case c >= 0x20 && c < 0x7f || c == '\t' || c == '\n' || c == '\r':
			text++
			i++
		case c >= 0xc2 && c <= 0xf4 && i+1 < len(dec) && dec[i+1]&0xc0 == 0x80:
			// Lead and continuation byte of UTF-8: good enough for a gate.
			text += 2
			i += 2
		default:
			text = 0
			i++
		}
		if text >= need {
			return true
		}
		// UTF-16 of text: a NUL every other byte.
		if c == 0 && i >= 2 && dec[i-2] != 0 {
			u16++
			if u16 >= need {
				return true
			}
		} else if c != 0 && i >= 2 && dec[i-2] == 0 {
			// still alternating
		} else if c != 0 {
			u16 = 0
		}
		// Neither stretch can still reach need: decoded identifiers and
		// binary fail within a few bytes.
		if left := len(dec) - i; text+left < need && u16+left/2+1 < need {
			return false
		}
	}
	return false
}

// escapeRuns finds runs holding escapes introduced by esc ('%' for URL
// percent-encoding, '\\' for JSON/JS string escapes), decodes them and
// scans the result.
func (sc *scanner) escapeRuns(buf []byte, depth int, enc string, m spanMap, esc byte, how string, minDec int) {
	for from := 0; from < len(buf); {
		i := bytes.IndexByte(buf[from:], esc)
		if i < 0 {
			return
		}
		i += from
		if !escapeAt(buf, i, esc) {
			from = i + 1
			continue
		}
		rs := i
		for rs > 0 && runByte(buf[rs-1]) {
			rs--
		}
		re := i
		for re < len(buf) {
			c := buf[re]
			if esc == '\\' && c == '\\' && re+1 < len(buf) {
				re += 2 // an escaped quote or space stays in the run
				continue
			}
			if !runByte(c) {
				break
			}
			re++
		}
		from = re
		sc.noteRun(depth, rs, re)
		if re-rs < minDec {
			continue
		}
		// Decoded bytes and their source offsets live on the scanner's
		// scratch stacks (decoding never lengthens a run), so escaped runs
		// cost no garbage.
		dmark, smark := len(sc.scratch), len(sc.srcs)
		sc.reserve(re - rs)
		sc.srcs = slices.Grow(sc.srcs, re-rs+1)
		var dec []byte
		var src []int32
		if esc == '%' {
			dec, src = decodePercent(sc.scratch[dmark:dmark], sc.srcs[smark:smark], buf[rs:re], rs)
		} else {
			dec, src = decodeBackslash(sc.scratch[dmark:dmark], sc.srcs[smark:smark], buf[rs:re], rs)
		}
		sc.scratch, sc.srcs = sc.scratch[:dmark+len(dec)], sc.srcs[:smark+len(src)]
		if len(dec) >= minDec {
			sc.child(dec, src, rs, re, depth, enc, how, m)
		}
		sc.scratch, sc.srcs = sc.scratch[:dmark], sc.srcs[:smark]
	}
}

// escapeAt reports whether buf[i] starts an escape worth decoding.
func escapeAt(b []byte, i int, esc byte) bool {
	if esc == '%' {
		return i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2])
	}
	if i+1 >= len(b) {
		return false
	}
	switch b[i+1] {
	case 'u':
		return i+5 < len(b) && isHex(b[i+2]) && isHex(b[i+3]) && isHex(b[i+4]) && isHex(b[i+5])
	case 'x':
		return i+3 < len(b) && isHex(b[i+2]) && isHex(b[i+3])
	case '/':
		return true
	}
	return false
}

// runByte reports whether c may belong to an escaped token: anything but
// whitespace, quotes, angle brackets and backticks.
func runByte(c byte) bool {
	return c > ' ' && c != '"' && c != '\'' && c != '<' && c != '>' && c != '`' && c != 0x7f
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// decodePercent decodes %XX escapes, appending to dec; src (appended to
// src) maps decoded bytes to offsets (base + index into run), with one
// extra entry for the end.
func decodePercent(dec []byte, src []int32, run []byte, base int) ([]byte, []int32) {
	for i := 0; i < len(run); {
		src = append(src, int32(base+i))
		if run[i] == '%' && i+2 < len(run) && isHex(run[i+1]) && isHex(run[i+2]) {
			dec = append(dec, unhex(run[i+1])<<4|unhex(run[i+2]))
			i += 3
			continue
		}
		dec = append(dec, run[i])
		i++
	}
	src = append(src, int32(base+len(run)))
	return dec, src
}

// decodeBackslash decodes JSON and JavaScript string escapes: \uXXXX (with
// surrogate pairs), \xHH, \/ and the one-letter escapes, appending like
// decodePercent.
func decodeBackslash(dec []byte, src []int32, run []byte, base int) ([]byte, []int32) {
	var tmp [4]byte
	for i := 0; i < len(run); {
		start := int32(base + i)
		c := run[i]
		if c != '\\' || i+1 >= len(run) {
			src = append(src, start)
			dec = append(dec, c)
			i++
			continue
		}
		switch e := run[i+1]; e {
		case 'u':
			if i+5 < len(run) && isHex(run[i+2]) && isHex(run[i+3]) && isHex(run[i+4]) && isHex(run[i+5]) {
				r := rune(hex4(run[i+2:]))
				w := 6
				if utf16.IsSurrogate(r) && i+11 < len(run) && run[i+6] == '\\' && run[i+7] == 'u' &&
					isHex(run[i+8]) && isHex(run[i+9]) && isHex(run[i+10]) && isHex(run[i+11]) {
					r = utf16.DecodeRune(r, rune(hex4(run[i+8:])))
					w = 12
				}
				k := utf8.EncodeRune(tmp[:], r)
				for j := 0; j < k; j++ {
					src = append(src, start)
				}
				dec = append(dec, tmp[:k]...)
				i += w
				continue
			}
		case 'x':
			if i+3 < len(run) && isHex(run[i+2]) && isHex(run[i+3]) {
				src = append(src, start)
				dec = append(dec, unhex(run[i+2])<<4|unhex(run[i+3]))
				i += 4
				continue
			}
		case 'n', 't', 'r', 'b', 'f', '/', '\\', '"', '\'':
			src = append(src, start)
			dec = append(dec, unescape1(e))
			i += 2
			continue
		}
		src = append(src, start)
		dec = append(dec, c)
		i++
	}
	src = append(src, int32(base+len(run)))
	return dec, src
}

// unescape1 returns the byte a one-letter escape stands for.
func unescape1(e byte) byte {
	switch e {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	}
	return e
}

func hex4(b []byte) uint16 {
	return uint16(unhex(b[0]))<<12 | uint16(unhex(b[1]))<<8 | uint16(unhex(b[2]))<<4 | uint16(unhex(b[3]))
}

// utf16Runs finds stretches where every other byte is NUL and the others
// are not, decodes them as UTF-16 (LE when the stretch starts with a
// non-NUL byte, else BE) and scans the text.
func (sc *scanner) utf16Runs(buf []byte, depth int, enc string, m spanMap, minDec int) {
	for from := 0; from < len(buf); {
		z := bytes.IndexByte(buf[from:], 0)
		if z < 0 {
			return
		}
		z += from
		// Alternation: bytes at parity of z are NUL, the others not.
		rs := z
		if z > 0 && buf[z-1] != 0 && !(z >= 2 && buf[z-2] == 0xfe && buf[z-1] == 0xff) {
			rs = z - 1 // else a big-endian byte order mark precedes
		}
		re := utf16End(buf, rs, z)
		from = max(re, z+1)
		sc.noteRun(depth, rs, re)
		// A unit decodes to up to 3 bytes of UTF-8: a secret with bytes
		// outside ASCII has fewer units than bytes.
		if units := (re - rs) / 2; units < minDec && (sc.s.asciiOnly || 3*units < minDec) {
			continue
		}
		le := buf[rs] != 0
		how := "utf16be"
		if le {
			how = "utf16le"
		}
		if (re-rs)%2 == 1 {
			re-- // a lone final byte is half a unit
		}
		// Decoded bytes and their source offsets live on the scratch stacks,
		// as for escapes: a UTF-16 file is one long stretch, and fresh
		// buffers for it were a third of the scan's time. A unit decodes to
		// at most 3 bytes; ASCII units, nearly all of them, to one, and a
		// stretch of ASCII alone (the stretch's other bytes are all NUL)
		// needs no offset map: decoded byte k comes from unit k.
		nu := (re - rs) / 2
		dmark, smark := len(sc.scratch), len(sc.srcs)
		sc.reserve(3 * nu)
		if dec, ok := asciiUnits(sc.scratch[dmark:dmark], buf[rs:re], le); ok {
			sc.scratch = sc.scratch[:dmark+len(dec)]
			if len(dec) >= minDec {
				sc.level(dec, depth+1, chain(enc, how), func(a, b int) (int, int, bool) {
					if m != nil {
						return m(rs+2*a, rs+2*b)
					}
					return rs + 2*a, rs + 2*b, true
				})
			}
			sc.scratch = sc.scratch[:dmark]
			continue
		}
		sc.srcs = slices.Grow(sc.srcs, 3*nu+1)
		dec := sc.scratch[dmark:dmark]
		src := sc.srcs[smark:smark]
		for i := rs; i+1 < re; i += 2 {
			u := uint16(buf[i])<<8 | uint16(buf[i+1])
			if le {
				u = uint16(buf[i]) | uint16(buf[i+1])<<8
			}
			if u < utf8.RuneSelf {
				dec = append(dec, byte(u))
				src = append(src, int32(i))
				continue
			}
			r := rune(u)
			if utf16.IsSurrogate(r) {
				r = utf8.RuneError
			}
			n0 := len(dec)
			dec = utf8.AppendRune(dec, r)
			for range len(dec) - n0 {
				src = append(src, int32(i))
			}
		}
		src = append(src, int32(rs+2*nu))
		sc.scratch, sc.srcs = sc.scratch[:dmark+len(dec)], sc.srcs[:smark+len(src)]
		if len(dec) >= minDec {
			sc.child(dec, src, rs, re, depth, enc, how, m)
		}
		sc.scratch, sc.srcs = sc.scratch[:dmark], sc.srcs[:smark]
	}
}

// utf16End returns the end of the stretch from rs on in which the bytes at
// the parity of z are NUL and the others not, 8 bytes at a time where it
// can.
func utf16End(buf []byte, rs, z int) int {
	re := rs
	if (re-z)%2 != 0 && re < len(buf) && buf[re] != 0 {
		re++
	}
	if (re-z)%2 == 0 {
		for re+8 <= len(buf) {
			x := le64(buf[re:])
			y := x | 0x00ff00ff00ff00ff // a NUL among the odd bytes?
			if x&0x00ff00ff00ff00ff != 0 || (y-ones8)&^y&high8 != 0 {
				break
			}
			re += 8
		}
	}
	for re < len(buf) && (buf[re] == 0) == ((re-z)%2 == 0) {
		re++
	}
	return re
}

// asciiUnits appends to dec the UTF-16 units of run (an even number of
// bytes, little-endian if le, every other byte NUL) and reports whether all
// of them were ASCII; if not, dec holds a part and the caller decodes the
// run the general way.
func asciiUnits(dec, run []byte, le bool) ([]byte, bool) {
	k := 1
	if le {
		k = 0
	}
	// Four units at a time: the unit bytes must be ASCII (the others are
	// NUL, as the stretch was found), and pack into four bytes.
	for ; k+8 <= len(run); k += 8 {
		x := le64(run[k:]) & 0x00ff00ff00ff00ff
		if x&0x0080008000800080 != 0 {
			return dec, false
		}
		x = (x | x>>8) & 0x0000ffff0000ffff
		dec = binary.LittleEndian.AppendUint32(dec, uint32(x|x>>16))
	}
	for ; k < len(run); k += 2 {
		c := run[k]
		if c >= utf8.RuneSelf {
			return dec, false
		}
		dec = append(dec, c)
	}
	return dec, true
}
