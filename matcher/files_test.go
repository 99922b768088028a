package matcher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestScanPaths scans a tree holding every kind of file the fast reader and
// the streaming path meet: small, exactly its first buffer, larger than it,
// larger than the streaming threshold, binary, UTF-16, under .git, behind a
// symlink, and a FIFO (not scanned, and no hang).
func TestScanPaths(t *testing.T) {
	old := streamThreshold
	streamThreshold = 1 << 20
	t.Cleanup(func() { streamThreshold = old })

	dir := t.TempDir()
	write := func(name string, b []byte) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pad := func(n int) string { return strings.Repeat("x = 1 // filler\n", n/16+1)[:n] }
	line := "TOKEN=" + ghToken + "\n"
	write("small.env", []byte(line))
	write("exact.txt", []byte(pad(64<<10-len(line))+line)) // fills the first buffer exactly
	write("grown.txt", []byte(pad(300<<10)+line))
	write("streamed.txt", []byte(pad(3<<20)+line+pad(1000)))
	write("bin.dat", append([]byte{0, 1, 2, 0, 0, 3}, line...))
	write("utf16.txt", []byte(utf16le(line, true)))
	write("sub/.git/config", []byte(line))
	write("clean.go", []byte(pad(5000)))
	if err := os.Symlink(filepath.Join(dir, "small.env"), filepath.Join(dir, "link.env")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}

	set := testSet(t, ghToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	found, errs := set.ScanPaths(ctx, []string{dir}, FileScanOpts{Workers: 3})
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	got := map[string]int{}
	for _, f := range found {
		rel, _ := filepath.Rel(dir, f.Path)
		got[rel] = f.Line
	}
	want := map[string]int{
		"small.env": 1, "link.env": 1, "utf16.txt": 1,
		"exact.txt":    strings.Count(pad(64<<10-len(line)), "\n") + 1,
		"grown.txt":    strings.Count(pad(300<<10), "\n") + 1,
		"streamed.txt": strings.Count(pad(3<<20), "\n") + 1,
	}
	if len(got) != len(want) {
		t.Errorf("found in %v, want %v", got, want)
	}
	for name, l := range want {
		if got[name] != l {
			t.Errorf("%s: line %d, want %d", name, got[name], l)
		}
	}
}
