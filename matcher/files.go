package matcher

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// LineError reports a refused line of input, by number; it never holds the
// line's content.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// maxLineLen bounds an input line of FingerprintLines and ReadFingerprints.
const maxLineLen = 1 << 20

// FingerprintLines computes the fingerprint of every line of r (one secret
// per line, a trailing CR dropped), in order. Refused lines are reported as
// *LineError values in refused; err is set only when reading fails.
func FingerprintLines(r io.Reader, opts ComputeOpts) (fps []Fingerprint, refused []error, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineLen)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSuffix(sc.Bytes(), []byte{'\r'})
		if len(line) == 0 {
			refused = append(refused, &LineError{Line: n, Err: errors.New("empty line")})
			continue
		}
		f, err := Compute(line, opts)
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

// PathFinding is a Finding in a named file ("-" for standard input).
type PathFinding struct {
	Path string
	Finding
}

// FileScanOpts tunes ScanPaths.
type FileScanOpts struct {
	// Workers is the number of files scanned at once; 0 means GOMAXPROCS.
	Workers int
	// Stdin is read for the path "-".
	Stdin io.Reader
	// Progress, if set, is called from one goroutine with the bytes scanned
	// so far and the total, after each file.
	Progress func(done, total int64)
	// Total, if set, is called once with the total size after the walk.
	Total func(total int64)
}

// streamThreshold is the file size above which files are streamed.
var streamThreshold = int64(64 << 20) // a variable for tests

// errBinary reports a binary file found before it was read to the end.
var errBinary = errors.New("binary")

// fileJob is a file to scan: path as given, or name within dir as walked.
type fileJob struct {
	dir  *dirHandle
	name string
	path string
	size int64
}

// fullPath is the file's path as reported: built only for a file with
// findings or an error.
func (j fileJob) fullPath() string {
	if j.dir == nil {
		return j.path
	}
	return filepath.Join(j.dir.path, j.name)
}

// readBatch is the most files a worker takes from the walk at once, for
// fileReader.prefetch to read together.
const readBatch = 32

// prefetched is what fileReader.prefetch learnt of a file.
type prefetched struct {
	data   []byte // the whole file if whole, else its first bytes if any
	whole  bool
	binary bool // skip it
}

// done releases the job's hold on its directory.
func (j fileJob) done() {
	if j.dir != nil {
		j.dir.release()
	}
}

// ScanPaths scans files, directories (recursively, skipping .git) and "-"
// (standard input) on several goroutines. Binary files are skipped unless
// they read as UTF-16. Findings are sorted by path, then offset. Errors for
// single files are returned in errs; scanning goes on.
func (s *Set) ScanPaths(ctx context.Context, paths []string, opts FileScanOpts) (found []PathFinding, errs []error) {
	var (
		mu    sync.Mutex // guards found, errs
		done  atomic.Int64
		total atomic.Int64
		wg    sync.WaitGroup
	)
	addErr := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// The walk feeds the workers as it goes, so reading directories
	// overlaps scanning files. It hands them files in batches of
	// readBatch: one channel operation (and at most one wake-up) per
	// batch, and a full batch for fileReader.prefetch to read at once.
	// A progress total needs the whole walk first.
	jobs := make(chan []fileJob, 8)
	// Workers close finished directories in their batches; a walk for a
	// progress total holds no directory, so it closes them at once.
	closer := new(dirCloser)
	defer closer.closeAll() // after the workers, below
	walkCloser := closer
	if opts.Total != nil {
		walkCloser = nil
	}
	walk := func(emit func(fileJob)) {
		for _, p := range paths {
			if p == "-" {
				emit(fileJob{path: "-"})
				continue
			}
			walkRoot(ctx, p, opts.Total != nil, walkCloser, emit, addErr)
		}
	}
	go func() {
		defer close(jobs)
		var batch []fileJob
		send := func(j fileJob) {
			if batch == nil {
				batch = make([]fileJob, 0, readBatch)
			}
			if batch = append(batch, j); len(batch) == readBatch {
				jobs <- batch
				batch = nil
			}
		}
		if opts.Total == nil {
			walk(send)
		} else {
			// Held jobs name their files by path, not by an open
			// directory: a large tree has more directories than a
			// process may keep open.
			var all []fileJob
			walk(func(j fileJob) {
				all = append(all, fileJob{path: j.fullPath(), size: j.size})
				total.Add(j.size)
				j.done()
			})
			opts.Total(total.Load())
			for _, j := range all {
				send(j)
			}
		}
		if len(batch) > 0 {
			jobs <- batch
		}
	}()
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var fr fileReader // reused across this worker's files
			defer fr.release()
			var buf []byte // for the portable path, likewise
			pre := make([]prefetched, readBatch)
			for batch := range jobs {
				if ctx.Err() == nil {
					fr.prefetch(batch, pre[:len(batch)], closer)
				}
				for k, j := range batch {
					if ctx.Err() != nil {
						j.done()
						continue // drain, so the walk can finish
					}
					var fs []Finding
					var err error
					fs, buf, err = s.scanFile(j, pre[k], opts.Stdin, &fr, buf)
					var path string
					if len(fs) > 0 {
						path = j.fullPath()
					}
					j.done()
					d := done.Add(j.size)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, f := range fs {
						found = append(found, PathFinding{Path: path, Finding: f})
					}
					if opts.Progress != nil {
						opts.Progress(d, total.Load())
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("scan: %w", err))
	}
	slices.SortFunc(found, func(a, b PathFinding) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return a.Offset - b.Offset
	})
	return found, errs
}

// scanFile scans one file, or stdin for "-": what pre holds of it, or what
// fr reads, or, where fr cannot, what it reads into buf (grown as needed
// and returned for reuse: Scan keeps no reference to its input). Files
// larger than streamThreshold, and stdin, are streamed.
func (s *Set) scanFile(j fileJob, pre prefetched, stdin io.Reader, fr *fileReader, buf []byte) ([]Finding, []byte, error) {
	switch {
	case pre.binary:
		return nil, buf, nil
	case pre.whole:
		if LooksBinary(pre.data[:min(len(pre.data), 8<<10)]) {
			return nil, buf, nil
		}
		return s.Scan(pre.data), buf, nil
	}
	var r io.Reader
	var size int64 = -1
	path := j.path
	if j.dir == nil && path == "-" {
		if stdin == nil {
			return nil, buf, errors.New("scan -: no standard input")
		}
		r = stdin
	} else {
		b, err := fr.read(j, pre.data)
		switch {
		case err == nil:
			if LooksBinary(b[:min(len(b), 8<<10)]) {
				return nil, buf, nil
			}
			return s.scanWith(b, fr.scratch), buf, nil
		case errors.Is(err, errBinary):
			return nil, buf, nil
		case !errors.Is(err, errTooLarge):
			return nil, buf, fmt.Errorf("scan %s: %w", j.fullPath(), err)
		}
		path = j.fullPath()
		f, err := os.Open(path)
		if err != nil {
			return nil, buf, fmt.Errorf("scan %s: %w", path, err)
		}
		defer f.Close()
		if info, err := f.Stat(); err == nil && info.Mode().IsRegular() {
			size = info.Size()
		}
		r = f
	}
	if size < 0 || size > streamThreshold {
		br := bufio.NewReaderSize(r, 8<<10)
		head, err := br.Peek(8 << 10)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, buf, fmt.Errorf("scan %s: %w", path, err)
		}
		if LooksBinary(head) {
			return nil, buf, nil
		}
		fs, err := s.ScanReader(br)
		if err != nil {
			return fs, buf, fmt.Errorf("scan %s: %w", path, err)
		}
		return fs, buf, nil
	}
	// Read the whole file. A read that returns less than it was offered
	// after reaching the size seen by stat is the end: most files then take
	// one read, not a second one to see EOF. A file that grew meanwhile
	// fills its buffer and is read on.
	if cap(buf) < int(size)+1 {
		buf = make([]byte, 0, max(int(size)+1, 64<<10))
	}
	buf = buf[:0]
	for {
		want := cap(buf) - len(buf)
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) || err == nil && n < want && int64(len(buf)) >= size {
			break
		}
		if err != nil {
			return nil, buf, fmt.Errorf("scan %s: %w", path, err)
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf)) // the file grew while read
		}
	}
	if LooksBinary(buf[:min(len(buf), 8<<10)]) {
		return nil, buf, nil
	}
	return s.scanWith(buf, fr.scratch), buf, nil
}
