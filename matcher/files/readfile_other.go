//go:build !linux

package files

import "errors"

// errTooLarge sends every file to the portable path (files.go).
var errTooLarge = errors.New("use the portable path")

// fileReader sends every file to the portable path.
type fileReader struct {
	noRing   bool
	streamAt int64
}

func (r *fileReader) read(j fileJob, head []byte) ([]byte, error) { return nil, errTooLarge }
func (r *fileReader) release()                                    {}

func (r *fileReader) prefetch(js []fileJob, out []prefetched, _ *dirCloser) { clear(out) }

func (r *fileReader) scratch(n int) []byte { return nil }
