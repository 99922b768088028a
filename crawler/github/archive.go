package github

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// ArchiveFileName is GH Archive's name for the file of an hour of the
// public stream: YYYY-MM-DD-H.json.gz in UTC, the hour without a leading
// zero (https://www.gharchive.org).
func ArchiveFileName(hour time.Time) string {
	h := hour.UTC()
	return fmt.Sprintf("%s-%d.json.gz", h.Format("2006-01-02"), h.Hour())
}

// hourOf is the archive hour an instant falls in.
func hourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// lineReader reads JSON lines from a stream in bounded memory: a line
// longer than max is reported as oversized and its bytes are discarded as
// they are read, never accumulated.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its newline; io.EOF after the last.
// The line is valid until the next call.
func (l *lineReader) next() (line []byte, oversized bool, err error) {
	l.buf = l.buf[:0]
	for {
		frag, err := l.r.ReadSlice('\n')
		if !oversized {
			if len(l.buf)+len(frag) > l.max+1 { // +1: the newline
				oversized = true
				l.buf = l.buf[:0]
			} else {
				l.buf = append(l.buf, frag...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(l.buf) == 0 && !oversized {
				return nil, false, io.EOF
			}
			return bytes.TrimRight(l.buf, "\r\n"), oversized, nil
		case err != nil:
			return nil, false, err
		}
		return bytes.TrimRight(l.buf, "\r\n"), oversized, nil
	}
}

// archiveEventID reads an archive line's event id. GH Archive writes the id
// first ({"id":"…",…}), so that prefix is read without decoding the line;
// anything else is decoded. A line whose JSON breaks after the id counts as
// an event here and as malformed where it is handled.
func archiveEventID(line []byte) (int64, error) {
	const prefix = `{"id":"`
	if bytes.HasPrefix(line, []byte(prefix)) {
		rest := line[len(prefix):]
		if end := bytes.IndexByte(rest, '"'); end > 0 {
			if id, err := strconv.ParseInt(string(rest[:end]), 10, 64); err == nil && id > 0 {
				return id, nil
			}
		}
	}
	var h struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(line, &h); err != nil {
		return 0, fmt.Errorf("decode archive line: %w", err)
	}
	id, err := strconv.ParseInt(h.ID, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("archive event id %q is not a number", h.ID)
	}
	return id, nil
}
