package files

import (
	"bufio"
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

	"github.com/leakwatch/leakwatch/matcher"
)

// Finding is a matcher.Finding in a named file ("-" for standard input).
type Finding struct {
	Path string
	matcher.Finding
}

// Opts tunes Scan.
type Opts struct {
	// Workers is the number of files scanned at once; 0 means GOMAXPROCS.
	Workers int
	// Stdin is read for the path "-".
	Stdin io.Reader
	// Progress, if set, is called from one goroutine with the bytes scanned
	// so far and the total, after each file.
	Progress func(done, total int64)
	// Total, if set, is called once with the total size after the walk.
	Total func(total int64)
	// StreamThreshold is the file size above which files are streamed
	// through matcher.ScanReader rather than read whole (0: 64 MiB).
	StreamThreshold int64
	// NoRing reads without io_uring even where the kernel has it.
	NoRing bool
}

// streamThresholdDefault is Opts.StreamThreshold's default.
const streamThresholdDefault = 64 << 20

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

// Scan scans files, directories (recursively, skipping .git) and "-"
// (standard input) with set, on several goroutines. Binary files are skipped unless
// they read as UTF-16. Findings are sorted by path, then offset. Errors for
// single files are returned in errs; scanning goes on.
func Scan(ctx context.Context, set *matcher.Set, paths []string, opts Opts) (found []Finding, errs []error) {
	if opts.StreamThreshold <= 0 {
		opts.StreamThreshold = streamThresholdDefault
	}
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
			fr := fileReader{noRing: opts.NoRing, streamAt: opts.StreamThreshold} // reused across this worker's files
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
					var fs []matcher.Finding
					var err error
					fs, buf, err = scanFile(set, j, pre[k], opts.Stdin, &fr, buf)
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
						found = append(found, Finding{Path: path, Finding: f})
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
	slices.SortFunc(found, func(a, b Finding) int {
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
// larger than fr.streamAt, and stdin, are streamed.
func scanFile(s *matcher.Set, j fileJob, pre prefetched, stdin io.Reader, fr *fileReader, buf []byte) ([]matcher.Finding, []byte, error) {
	switch {
	case pre.binary:
		return nil, buf, nil
	case pre.whole:
		if matcher.LooksBinary(pre.data[:min(len(pre.data), 8<<10)]) {
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
			if matcher.LooksBinary(b[:min(len(b), 8<<10)]) {
				return nil, buf, nil
			}
			return s.ScanWithScratch(b, fr.scratch), buf, nil
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
	if size < 0 || size > fr.streamAt {
		br := bufio.NewReaderSize(r, 8<<10)
		head, err := br.Peek(8 << 10)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, buf, fmt.Errorf("scan %s: %w", path, err)
		}
		if matcher.LooksBinary(head) {
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
	if matcher.LooksBinary(buf[:min(len(buf), 8<<10)]) {
		return nil, buf, nil
	}
	return s.ScanWithScratch(buf, fr.scratch), buf, nil
}
