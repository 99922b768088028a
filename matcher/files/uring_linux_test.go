package files

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestScanPathsWithoutRing runs TestScanPaths on the plain system-call
// path, which every file takes where io_uring is unavailable.
func TestScanPathsWithoutRing(t *testing.T) {
	testScanPaths(t, Opts{NoRing: true})
}

// TestPrefetch checks what one io_uring batch makes of each kind of file:
// small files are read whole, a large binary file is recognised from its
// first read, a large text file's head is kept for the plain path to read
// on from, and a missing file and standard input are left to the plain
// path, which then reports the missing file's error.
// Directories done with are closed in the same batch.
func TestPrefetch(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"a.txt":   []byte("first file\n"),
		"empty":   nil,
		"big.txt": bytes.Repeat([]byte("0123456789abcde\n"), smallRead/16+1),
		"big.bin": append([]byte{0, 0, 0, 1}, make([]byte, smallRead)...),
		"b.txt":   []byte("second file\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := openDir(-100, dir) // AT_FDCWD
	if err != nil {
		t.Fatal(err)
	}
	d := &dirHandle{fd: fd, path: dir}
	d.refs.Store(1)
	defer d.release()
	jobs := []fileJob{
		{dir: d, name: "a.txt"}, {dir: d, name: "empty"}, {dir: d, name: "big.txt"},
		{dir: d, name: "big.bin"}, {dir: d, name: "missing"}, {path: "-"},
		{path: filepath.Join(dir, "b.txt")},
	}
	// A directory done with is closed in the batch.
	done, err := openDir(-100, dir)
	if err != nil {
		t.Fatal(err)
	}
	closer := new(dirCloser)
	closer.add(done)

	fr := fileReader{streamAt: streamThresholdDefault}
	defer fr.release()
	out := make([]prefetched, len(jobs))
	fr.prefetch(jobs, out, closer)
	if fr.noRing {
		t.Skip("io_uring is not available here; the plain path is tested by TestScanPathsWithoutRing")
	}
	want := []prefetched{
		{data: files["a.txt"], whole: true}, {data: []byte{}, whole: true}, {data: files["big.txt"][:smallRead]},
		{binary: true}, {}, {}, {data: files["b.txt"], whole: true},
	}
	for k, w := range want {
		g := out[k]
		if g.whole != w.whole || g.binary != w.binary || !bytes.Equal(g.data, w.data) {
			t.Errorf("%s: got whole=%v binary=%v %d bytes, want whole=%v binary=%v %d bytes",
				jobs[k].fullPath(), g.whole, g.binary, len(g.data), w.whole, w.binary, len(w.data))
		}
	}
	if _, err := unix.FcntlInt(uintptr(done), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("directory to close: fcntl error %v, want EBADF", err)
	}
	if len(closer.fds) != 0 {
		t.Errorf("still to close: %v", closer.fds)
	}
	if _, err := fr.read(jobs[4], nil); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: error %v", err)
	}
	if b, err := fr.read(jobs[2], out[2].data); err != nil || !bytes.Equal(b, files["big.txt"]) {
		t.Errorf("big.txt read on from its head: %d bytes, %v", len(b), err)
	}
	if b, err := fr.read(jobs[2], nil); err != nil || !bytes.Equal(b, files["big.txt"]) {
		t.Errorf("big.txt read whole: %d bytes, %v", len(b), err)
	}
	// The ring is reused: a second batch reads the small files again.
	fr.prefetch(jobs[:2], out[:2], closer)
	if !out[0].whole || string(out[0].data) != "first file\n" {
		t.Errorf("second batch: %+v", out[0])
	}
}
