package files

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestScanPaths scans a tree holding every kind of file the fast reader and
// the streaming path meet: small, exactly its first buffer, larger than it
// (twice, so the mapped buffer grows), larger than the streaming threshold,
// binary (small and large), UTF-16, under .git, deep, behind a symlink to a
// file (followed) and to a directory (not), and a FIFO (not scanned, and no
// hang). Every directory it opened is closed afterwards.
func TestScanPaths(t *testing.T) { testScanPaths(t, Opts{}) }

// testScanPaths runs the test with opts (a smaller stream threshold is set).
func testScanPaths(t *testing.T, opts Opts) {
	opts.StreamThreshold = 4 << 20
	opts.Workers = 3

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
	write("big.txt", []byte(pad(2<<20)+line))
	write("streamed.txt", []byte(pad(5<<20)+line+pad(1000)))
	write("bin.dat", append([]byte{0, 1, 2, 0, 0, 3}, line...))
	write("bigbin.dat", append(append([]byte{0, 1, 2, 0, 0, 3}, pad(200<<10)...), line...))
	write("a/b/c/d/deep.env", []byte(line))
	write("utf16.txt", []byte(utf16le(line, true)))
	write("sub/.git/config", []byte(line))
	write("clean.go", []byte(pad(5000)))
	if err := os.Symlink(filepath.Join(dir, "small.env"), filepath.Join(dir, "link.env")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}

	set := testSet(t, ghToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	found, errs := Scan(ctx, set, []string{dir}, opts)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if n := openFDs(t, dir); n != 0 {
		t.Errorf("%d descriptors left open in the tree", n)
	}
	got := map[string]int{}
	for _, f := range found {
		rel, _ := filepath.Rel(dir, f.Path)
		got[rel] = f.Line
	}
	want := map[string]int{
		"small.env": 1, "link.env": 1, "utf16.txt": 1,
		"exact.txt":        strings.Count(pad(64<<10-len(line)), "\n") + 1,
		"grown.txt":        strings.Count(pad(300<<10), "\n") + 1,
		"big.txt":          strings.Count(pad(2<<20), "\n") + 1,
		"streamed.txt":     strings.Count(pad(5<<20), "\n") + 1,
		"a/b/c/d/deep.env": 1,
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

// openFDs counts this process's open file descriptors on files under dir.
func openFDs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, dir) {
			n++
		}
	}
	return n
}

// TestScanPathsRoots covers what a path argument can be: a file, a
// symlink to a directory (followed, unlike links inside the tree), a
// .git directory named on purpose, a missing path (an error naming it,
// and the other paths still scanned), a walk for a progress total, and a
// walk cut short by cancellation, which must still close every directory
// it opened.
func TestScanPathsRoots(t *testing.T) {
	dir := t.TempDir()
	line := "TOKEN=" + ghToken + "\n"
	for _, name := range []string{"tree/x.env", "tree/y/z.env", "repo/.git/config", "file.env"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "tree"), filepath.Join(dir, "treelink")); err != nil {
		t.Fatal(err)
	}
	set := testSet(t, ghToken)
	ctx := context.Background()

	missing := filepath.Join(dir, "missing")
	found, errs := Scan(ctx, set, []string{
		filepath.Join(dir, "file.env"), filepath.Join(dir, "treelink") + "/", missing, filepath.Join(dir, "repo/.git"),
	}, Opts{})
	var got []string
	for _, f := range found {
		rel, _ := filepath.Rel(dir, f.Path)
		got = append(got, rel)
	}
	want := []string{"file.env", "repo/.git/config", "treelink/x.env", "treelink/y/z.env"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("found in %q, want %q", got, want)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), missing) || !errors.Is(errs[0], fs.ErrNotExist) {
		t.Errorf("errors %v, want one for %s", errs, missing)
	}

	// Many directories, and a context cancelled while they are walked.
	for i := range 300 {
		p := filepath.Join(dir, "many", strconv.Itoa(i), "f.env")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// With a progress total, the walk comes first and holds no directory
	// open until the scan.
	var total, done int64
	found, errs = Scan(ctx, set, []string{filepath.Join(dir, "many")}, Opts{
		Total: func(n int64) {
			total = n
			if n := openFDs(t, dir); n != 0 {
				t.Errorf("%d descriptors open after the walk", n)
			}
		},
		Progress: func(d, _ int64) { done = d },
	})
	if len(found) != 300 || len(errs) != 0 || total != int64(300*len(line)) || done != total {
		t.Errorf("with a total: %d found, errors %v, total %d, done %d", len(found), errs, total, done)
	}

	cctx, cancel := context.WithCancel(ctx)
	n := 0
	_, errs = Scan(cctx, set, []string{filepath.Join(dir, "many")}, Opts{Workers: 1, Progress: func(done, total int64) {
		if n++; n == 10 {
			cancel()
		}
	}})
	if len(errs) == 0 || !errors.Is(errs[len(errs)-1], context.Canceled) {
		t.Errorf("errors %v, want a cancellation", errs)
	}
	if n := openFDs(t, dir); n != 0 {
		t.Errorf("%d descriptors left open in the tree", n)
	}
}
