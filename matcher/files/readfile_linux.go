package files

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/leakwatch/leakwatch/matcher"
)

// errTooLarge sends files over the stream threshold to the streaming path.
var errTooLarge = errors.New("stream it")

// smallRead is the first read of every file: most source files fit.
const smallRead = 64 << 10

// fileReader reads whole files for one worker, reusing its buffers.
//
// Files that outgrow the first read go to a buffer mapped outside the Go
// heap and prefaulted by the kernel (mapHuge), in one call. Growing a heap
// slice instead touches each fresh page from user space, and on virtual
// machines where a page fault costs 12 µs (this one; prefaulting costs
// 0.7 µs a page) the faults of a few megabytes of buffer cost more than
// scanning them; doubling also copies and leaves garbage that holds more
// fresh pages until a collection.
type fileReader struct {
	small  []byte    // the first read; on the Go heap
	mapped mappedBuf // larger files
	arena  mappedBuf // the scanner's scratch when it outgrows the heap; see scratch
	ring   *uring    // batches of small files; nil until needed
	noRing bool      // io_uring is turned off, unavailable or failed
	// streamAt is the size from which files are streamed, not read whole.
	streamAt int64
	batch    []fileJob
	idx      []int
	closing  []int
}

// release unmaps the buffers and closes the ring.
func (r *fileReader) release() {
	r.mapped.release()
	r.arena.release()
	if r.ring != nil {
		r.ring.close()
		r.ring = nil
	}
}

// prefetch reads the files of js (at most readBatch) with one io_uring
// batch, setting out[k] for each file it read whole or found binary. Files
// it leaves unset (larger than the first read, failed, standard input, or
// no ring) are for read. out[k].data is valid until the next call.
//
// It also closes up to readBatch of closer's directories in the batch.
func (r *fileReader) prefetch(js []fileJob, out []prefetched, closer *dirCloser) {
	clear(out)
	if r.noRing || len(js) < 2 {
		closer.closeAll()
		return // one file gains nothing from a ring
	}
	if r.ring == nil {
		ring, err := newURing()
		if err != nil {
			r.noRing = true
			closer.closeAll()
			return
		}
		r.ring = ring
	}
	r.batch, r.idx = r.batch[:0], r.idx[:0]
	defer clear(r.batch) // drop the directory pointers
	for k, j := range js {
		if j.dir != nil || j.path != "-" {
			r.batch, r.idx = append(r.batch, j), append(r.idx, k)
		}
	}
	r.closing = closer.take(r.closing[:0], readBatch)
	// On an error the closes may or may not have run, and closing again
	// could close a descriptor opened since: a broken ring leaks them.
	if err := r.ring.read(r.batch, r.closing); err != nil {
		r.ring.close()
		r.ring, r.noRing = nil, true
		return
	}
	refused := 0
	for b, k := range r.idx {
		open, n := r.ring.res[b][0], r.ring.res[b][1]
		data := r.ring.bufs[b*smallRead:][:max(n, 0)]
		switch {
		case open < 0 || n < 0:
			// Read again with system calls, which report the error. An
			// open refused as invalid means a kernel without direct
			// descriptors (before 5.15).
			if open == -int32(unix.EINVAL) || open == -int32(unix.EOPNOTSUPP) {
				refused++
			}
		case n < smallRead:
			out[k] = prefetched{data: data, whole: true}
		case matcher.LooksBinary(data[:8<<10]):
			out[k] = prefetched{binary: true}
		default:
			out[k] = prefetched{data: data} // the head of a larger file
		}
	}
	if refused > 0 && refused == len(r.batch) {
		r.ring.close()
		r.ring, r.noRing = nil, true
	}
}

// read reads the regular file of job j, of at most r.streamAt bytes,
// with three system calls (openat, read, close) when it fits the first
// read; os.Open would add four more per file (fcntl calls and a refused
// epoll registration for the netpoller) and an fstat a fifth. If head is
// set, it holds the file's first smallRead bytes (read by prefetch), and
// only the rest is read. The walk has checked that the file is regular,
// for which a short read means the end of the file (O_NONBLOCK keeps one
// swapped for a FIFO since from blocking the scan). The result is valid
// until the next call. A binary file is reported as errBinary as soon as
// its first read shows it. Errors do not name the file: the caller does.
func (r *fileReader) read(j fileJob, head []byte) ([]byte, error) {
	dirfd, name := unix.AT_FDCWD, j.path
	if j.dir != nil {
		dirfd, name = j.dir.fd, j.name
	}
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer unix.Close(fd)
	if head == nil {
		if r.small == nil {
			r.small = make([]byte, smallRead)
		}
		n, err := readFD(fd, r.small, 0)
		if err != nil {
			return nil, err
		}
		if n < len(r.small) {
			return r.small[:n], nil
		}
		if matcher.LooksBinary(r.small[:8<<10]) {
			return nil, errBinary // the rest would be read for nothing
		}
		head = r.small
	}
	var st unix.Stat_t
	want := 2 * smallRead
	if unix.Fstat(fd, &st) == nil {
		if st.Size >= r.streamAt {
			return nil, errTooLarge
		}
		want = max(want, int(st.Size)+1) // +1: a short read then ends it
	}
	if err := r.mapped.grow(want, 0); err != nil {
		return nil, err
	}
	buf := r.mapped.b[:copy(r.mapped.b, head)]
	for {
		if len(buf) == len(r.mapped.b) { // the file grew since fstat
			if int64(len(buf)) >= r.streamAt {
				return nil, errTooLarge
			}
			if err := r.mapped.grow(2*len(buf), len(buf)); err != nil {
				return nil, err
			}
			buf = r.mapped.b[:len(buf)]
		}
		want := len(r.mapped.b) - len(buf)
		n, err := readFD(fd, r.mapped.b[len(buf):], int64(len(buf)))
		if err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+n]
		if n < want {
			return buf, nil
		}
	}
}

// hugePage is the size of a transparent huge page on amd64 and arm64.
const hugePage = 2 << 20

// mapHuge maps n bytes outside the Go heap, prefaulted, on transparent
// huge pages where the system allows it (THP "madvise" or "always").
// Every kernel entry on a machine with page-table isolation and no PCID
// (this VM) flushes the TLB, so after each read a scan of 4 KiB pages
// takes a page walk per page; one 2 MiB page takes one. mem is the whole
// mapping, for munmap; buf is its n bytes from a huge-page boundary.
func mapHuge(n int) (mem, buf []byte, err error) {
	if n < hugePage {
		mem, err = unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_POPULATE)
		return mem, mem, err
	}
	mem, err = unix.Mmap(-1, 0, n+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil, nil, err
	}
	off := int(-uintptr(unsafe.Pointer(&mem[0])) & (hugePage - 1))
	buf = mem[off : off+n : off+n]
	unix.Madvise(buf, unix.MADV_HUGEPAGE)                   // refused without THP: small pages then
	if unix.Madvise(buf, unix.MADV_POPULATE_WRITE) != nil { // Linux 5.14
		for i := 0; i < n; i += 4096 {
			buf[i] = 0
		}
	}
	return mem, buf, nil
}

// mappedBuf is a buffer mapped outside the Go heap by mapHuge (see
// fileReader), grown by mapping anew.
type mappedBuf struct {
	b   []byte // the buffer
	mem []byte // its mapping
}

// grow makes the buffer at least n bytes long, keeping its first keep
// bytes. Sizes round up to 1 MiB, or to a huge page from 2 MiB on, and do
// not double: every page is prefaulted, and fresh memory is what costs
// here, more than mapping again.
func (m *mappedBuf) grow(n, keep int) error {
	if len(m.b) >= n {
		return nil
	}
	unit := 1 << 20
	if n > 1<<20 {
		unit = hugePage
	}
	n = (n + unit - 1) &^ (unit - 1)
	mem, b, err := mapHuge(n)
	if err != nil {
		return fmt.Errorf("map a %d-byte buffer: %w", n, err)
	}
	copy(b, m.b[:keep])
	m.release()
	m.b, m.mem = b, mem
	return nil
}

func (m *mappedBuf) release() {
	if m.mem != nil {
		unix.Munmap(m.mem)
		m.b, m.mem = nil, nil
	}
}

// scratch gives the scanner room for its scratch stack outside the Go heap
// (see scanner.reserve), prefaulted: n bytes at least, or nil. The room is
// reused by the next scan.
func (r *fileReader) scratch(n int) []byte {
	if r.arena.grow(n, 0) != nil {
		return nil
	}
	return r.arena.b
}

// readFD is one pread(2) at offset off, retried on EINTR.
func readFD(fd int, b []byte, off int64) (n int, err error) {
	err = retryEINTR(func() (err error) {
		n, err = unix.Pread(fd, b, off)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	return n, nil
}
