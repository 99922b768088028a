//go:build unix

package matcher

import (
	"errors"
	"fmt"
	"slices"
	"syscall"
)

// errTooLarge sends files over streamThreshold to the streaming path.
var errTooLarge = errors.New("stream it")

// readSmall reads a regular file of at most streamThreshold bytes into buf
// with three system calls (open, read, close). os.Open adds four more per
// file (fcntl calls and a refused epoll registration for the netpoller),
// and an fstat for the size a fifth: most of the cost of scanning a tree
// of small source files. The caller has checked that path is a regular
// file, for which a short read means the end of the file (O_NONBLOCK keeps
// one swapped for a FIFO since from blocking the scan).
func readSmall(path string, buf []byte) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return buf, fmt.Errorf("scan %s: %w", path, err)
	}
	defer syscall.Close(fd)
	if cap(buf) < 64<<10 {
		buf = make([]byte, 0, 64<<10)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= streamThreshold {
				return buf, errTooLarge
			}
			buf = slices.Grow(buf, len(buf))
		}
		want := cap(buf) - len(buf)
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return buf, fmt.Errorf("scan %s: %w", path, err)
		}
		buf = buf[:len(buf)+n]
		if n < want {
			return buf, nil
		}
	}
}
