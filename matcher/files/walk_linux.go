package files

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirHandle is an open directory being walked. The files found in it are
// opened relative to it (openat), so the kernel resolves one path
// component per file instead of the whole path again: on a deep tree of
// small files, path lookup was a tenth of the scan's CPU time. It is
// closed when the walker and every queued file are done with it.
type dirHandle struct {
	fd     int
	path   string
	refs   atomic.Int32
	closer *dirCloser // nil: close at once
}

func (d *dirHandle) release() {
	if d.refs.Add(-1) == 0 {
		if d.closer != nil {
			d.closer.add(d.fd)
		} else {
			closeFD(d.fd)
		}
	}
}

// closeFD closes a directory, with a raw call: it never waits.
func closeFD(fd int) { syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// dirCloser collects the directories that are done with, for workers to
// close in their next io_uring batch (see fileReader.prefetch) rather than
// with a system call each.
type dirCloser struct {
	mu  sync.Mutex
	fds []int
}

func (c *dirCloser) add(fd int) {
	c.mu.Lock()
	c.fds = append(c.fds, fd)
	c.mu.Unlock()
}

// take moves up to n pending descriptors to dst.
func (c *dirCloser) take(dst []int, n int) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := max(len(c.fds)-n, 0)
	dst = append(dst, c.fds[k:]...)
	c.fds = c.fds[:k]
	return dst
}

// closeAll closes what is pending with system calls.
func (c *dirCloser) closeAll() {
	for _, fd := range c.take(nil, 1<<30) {
		closeFD(fd)
	}
}

// walker lists directories with getdents(2) into one reused buffer:
// filepath.WalkDir allocates an entry per file and sorts every directory,
// while ScanPaths sorts its findings at the end anyway.
type walker struct {
	ctx      context.Context
	needSize bool
	emit     func(fileJob)
	addErr   func(error)
	buf      []byte
	sys      sysCaller
	closer   *dirCloser
}

// walkRoot walks one path argument: a file, or a directory recursively
// (skipping .git directories below it). Symbolic links to files are
// followed; links to directories below the root are not, as with
// filepath.WalkDir, so a link cycle cannot loop the walk.
//
// Directories are closed through closer once done with.
func walkRoot(ctx context.Context, root string, needSize bool, closer *dirCloser, emit func(fileJob), addErr func(error)) {
	var st unix.Stat_t
	if err := retryEINTR(func() error { return unix.Stat(root, &st) }); err != nil {
		addErr(fmt.Errorf("walk %s: %w", root, &fs.PathError{Op: "stat", Path: root, Err: err}))
		return
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		emit(fileJob{path: root, size: st.Size})
		return
	case unix.S_IFDIR:
	default:
		return // devices, FIFOs and sockets hold no files to scan
	}
	fd, err := openDir(unix.AT_FDCWD, root)
	if err != nil {
		addErr(fmt.Errorf("walk %s: %w", root, err))
		return
	}
	w := walker{ctx: ctx, needSize: needSize, closer: closer, emit: emit, addErr: addErr, buf: make([]byte, 32<<10)}
	w.dir(root, fd)
}

func openDir(dirfd int, name string) (int, error) {
	return openDirWith(&sysCaller{blocking: true}, dirfd, name)
}

func openDirWith(c *sysCaller, dirfd int, name string) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var fd uintptr
	err = retryEINTR(func() error {
		var errno syscall.Errno
		fd, errno = c.call(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
			unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
		return errnoErr(errno)
	})
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return int(fd), nil
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// sysCaller makes the walk's system calls raw while they are quick. The
// walk makes most of a scan's system calls (four per directory), and a
// blocking call that the runtime's monitor finds still in progress has its
// P handed to another thread, with thread wake-ups, and keeps the monitor
// polling every 20 us. With the tree cached, the calls take microseconds
// and a raw call (which keeps the P) is cheaper; once one has waited for
// the disk (2 ms), the walk makes blocking calls from then on.
type sysCaller struct{ blocking bool }

func (c *sysCaller) call(trap, a1, a2, a3 uintptr) (uintptr, syscall.Errno) {
	if c.blocking {
		r, _, e := syscall.Syscall(trap, a1, a2, a3)
		return r, e
	}
	start := time.Now()
	r, _, e := syscall.RawSyscall(trap, a1, a2, a3)
	if time.Since(start) > 2*time.Millisecond {
		c.blocking = true
	}
	return r, e
}

func retryEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// dir walks the open directory fd, found at path, and closes it.
func (w *walker) dir(path string, fd int) {
	d := &dirHandle{fd: fd, path: path, closer: w.closer}
	d.refs.Store(1) // the walker's own
	defer d.release()
	var subdirs []string
	for w.ctx.Err() == nil {
		var n int
		err := retryEINTR(func() error {
			r, errno := w.sys.call(unix.SYS_GETDENTS64, uintptr(fd), uintptr(unsafe.Pointer(&w.buf[0])), uintptr(len(w.buf)))
			n = int(r)
			return errnoErr(errno)
		})
		if err != nil {
			w.addErr(fmt.Errorf("walk %s: %w", path, &fs.PathError{Op: "readdirent", Path: path, Err: err}))
			break
		}
		if n <= 0 {
			break
		}
		// Each record is a linux_dirent64: inode (8 bytes), offset (8),
		// record length (2), type (1), then the NUL-terminated name.
		for b := w.buf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				w.addErr(fmt.Errorf("walk %s: malformed directory entry", path))
				break
			}
			typ, name := b[18], b[19:reclen]
			b = b[reclen:]
			if k := bytes.IndexByte(name, 0); k >= 0 {
				name = name[:k]
			}
			if string(name) == "." || string(name) == ".." {
				continue
			}
			if typ == unix.DT_LNK || typ == unix.DT_UNKNOWN {
				// A link is followed to a file only; an unknown type (some
				// file systems do not fill it) is looked up.
				flags := 0
				if typ == unix.DT_UNKNOWN {
					flags = unix.AT_SYMLINK_NOFOLLOW
				}
				var st unix.Stat_t
				if err := fstatat(fd, string(name), &st, flags); err != nil {
					w.addErr(fmt.Errorf("stat %s: %w", filepath.Join(path, string(name)), err))
					continue
				}
				switch {
				case st.Mode&unix.S_IFMT == unix.S_IFREG:
					w.file(d, string(name), st.Size)
				case st.Mode&unix.S_IFMT == unix.S_IFDIR && typ == unix.DT_UNKNOWN && string(name) != ".git":
					subdirs = append(subdirs, string(name))
				}
				continue
			}
			switch typ {
			case unix.DT_REG:
				size := int64(0)
				if w.needSize {
					var st unix.Stat_t
					if err := fstatat(fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
						w.addErr(fmt.Errorf("stat %s: %w", filepath.Join(path, string(name)), err))
						continue
					}
					size = st.Size
				}
				w.file(d, string(name), size)
			case unix.DT_DIR:
				if string(name) != ".git" {
					subdirs = append(subdirs, string(name))
				}
			}
		}
	}
	for _, name := range subdirs {
		if w.ctx.Err() != nil {
			return
		}
		sub := filepath.Join(path, name)
		sfd, err := openDirWith(&w.sys, fd, name)
		if err != nil {
			w.addErr(fmt.Errorf("walk %s: %w", sub, err))
			continue
		}
		w.dir(sub, sfd)
	}
}

func (w *walker) file(d *dirHandle, name string, size int64) {
	d.refs.Add(1) // released by the worker that reads it
	w.emit(fileJob{dir: d, name: name, size: size})
}

func fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error {
	return retryEINTR(func() error { return unix.Fstatat(dirfd, name, st, flags) })
}
