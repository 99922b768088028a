package matcher

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// LineError reports a refused line of input, by number; it never holds the
// line's content.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ErrEmptyLine is the refusal of a blank line by FingerprintLines: callers
// that number their output by input line refuse it, others may skip it.
var ErrEmptyLine = errors.New("empty line")

// maxLineLen bounds an input line of FingerprintLines and ReadFingerprints.
const maxLineLen = 1 << 20

// FingerprintLines computes the fingerprint of every line of r (one secret
// per line, a trailing CR dropped), in order. Refused lines are reported as
// *LineError values in refused (a blank line's wraps ErrEmptyLine); err is
// set only when reading fails.
func FingerprintLines(r io.Reader, opts ComputeOpts) (fps []Fingerprint, refused []error, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineLen)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSuffix(sc.Bytes(), []byte{'\r'})
		if len(bytes.TrimSpace(line)) == 0 {
			refused = append(refused, &LineError{Line: n, Err: ErrEmptyLine})
			continue
		}
		f, err := Compute(line, opts)
		// The scanner's buffer holds the secret: wipe it once used.
		clear(line)
		if err != nil {
			refused = append(refused, &LineError{Line: n, Err: err})
			continue
		}
		fps = append(fps, f)
	}
	if err := sc.Err(); err != nil {
		return fps, refused, fmt.Errorf("read secrets after line %d: %w", n, err)
	}
	return fps, refused, nil
}

// ReadFingerprints parses a fingerprint file: one fingerprint per line,
// blank lines and lines starting with '#' ignored.
func ReadFingerprints(r io.Reader) ([]Fingerprint, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineLen)
	var fps []Fingerprint
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f, err := ParseFingerprint(line)
		if err != nil {
			return nil, &LineError{Line: n, Err: err}
		}
		fps = append(fps, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read fingerprints after line %d: %w", n, err)
	}
	return fps, nil
}

// LooksBinary reports whether head (the start of a file) is binary: it holds
// NUL bytes and does not read as UTF-16 text.
func LooksBinary(head []byte) bool {
	if bytes.IndexByte(head, 0) < 0 {
		return false
	}
	if bytes.HasPrefix(head, []byte{0xff, 0xfe}) || bytes.HasPrefix(head, []byte{0xfe, 0xff}) {
		return false
	}
	// UTF-16 text of mostly ASCII: NULs at one parity only, none at the other.
	var nul [2]int
	for i, c := range head {
		if c == 0 {
			nul[i&1]++
		}
	}
	half := len(head) / 2
	return !(nul[0] == 0 && nul[1] >= half*3/5 || nul[1] == 0 && nul[0] >= half*3/5)
}
