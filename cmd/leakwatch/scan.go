package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/leakwatch/leakwatch/matcher"
	"github.com/leakwatch/leakwatch/matcher/files"
)

const scanUsage = `Usage: leakwatch scan --fingerprints FILE [--format jsonl|sarif] [PATH ...]

Scans files, directories (recursively, skipping .git) or standard input
("-") for the registered secrets whose fingerprints are in FILE, plainly or
inside base64, URL, JSON-escape and UTF-16 encodings. Binary files are
skipped unless they read as UTF-16. Exit status: 1 when anything was found,
0 when nothing was, 2 on error.

Flags:
`

// progressMin is the input size above which a progress bar is shown on a
// terminal.
const progressMin = 256 << 20

// runScan implements "leakwatch scan".
func runScan(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fpFile := fs.String("fingerprints", "", "`FILE` of fingerprints, one per line (required)")
	format := fs.String("format", "jsonl", "output `format`: jsonl or sarif")
	workers := fs.Int("workers", 0, "files scanned at once (default: all cores)")
	if code, ok := parseFlags(fs, args, scanUsage, stdout, stderr); !ok {
		return code
	}
	// The scan's live heap is its read buffers and garbage is small, so the
	// default GOGC=100 spends a fifth of a short scan in collections while
	// the heap ramps up; 400 leaves one. GOGC in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if *fpFile == "" {
		fmt.Fprintln(stderr, "scan: --fingerprints is required")
		return 2
	}
	if *format != "jsonl" && *format != "sarif" {
		fmt.Fprintf(stderr, "scan: unknown --format %q (want jsonl or sarif)\n", *format)
		return 2
	}
	paths := fs.Args()
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "scan: no PATH given (use - for standard input)")
		return 2
	}
	f, err := os.Open(*fpFile)
	if err != nil {
		fmt.Fprintf(stderr, "scan: %v\n", err)
		return 2
	}
	fps, err := matcher.ReadFingerprints(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "scan: %s: %v\n", *fpFile, err)
		return 2
	}
	set := matcher.NewSet(fps)
	opts := files.Opts{Workers: *workers, Stdin: stdin}
	if isTerminal(stderr) {
		opts.Total, opts.Progress = progressBar(stderr)
	}
	found, errs := files.Scan(ctx, set, paths, opts)
	for _, e := range errs {
		fmt.Fprintf(stderr, "scan: %v\n", e)
	}
	if *format == "sarif" {
		err = files.WriteSARIF(stdout, found)
	} else {
		err = files.WriteJSONL(stdout, found)
	}
	if err != nil {
		fmt.Fprintf(stderr, "scan: %v\n", err)
		return 2
	}
	switch {
	case len(errs) > 0:
		return 2
	case len(found) > 0:
		return 1
	}
	return 0
}

// isTerminal reports whether w is a terminal. /dev/null is a character
// device too: taking it for a terminal turned on the progress bar, whose
// total needs a stat of every file and the whole walk before scanning.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && fileIsTerminal(f)
}

// progressBar returns callbacks drawing a bar on w when the input is large.
func progressBar(w io.Writer) (func(int64), func(int64, int64)) {
	var show bool
	var last time.Time
	total := func(t int64) { show = t >= progressMin }
	progress := func(done, t int64) {
		if !show || (time.Since(last) < 200*time.Millisecond && done < t) {
			return
		}
		last = time.Now()
		const width = 30
		n := int(int64(width) * done / max(t, 1))
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = ' '
			if i < n {
				bar[i] = '='
			}
		}
		fmt.Fprintf(w, "\r[%s] %d/%d MiB", bar, done>>20, t>>20)
		if done >= t {
			fmt.Fprintln(w)
		}
	}
	return total, progress
}
