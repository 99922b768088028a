package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/leakwatch/leakwatch/matcher"
)

const fingerprintUsage = `Usage: leakwatch fingerprint [--allow-weak] [--file PATH]

Reads secrets from standard input, one per line, and prints one fingerprint
per line in the same order. The secrets never leave this machine; register
the fingerprints. With --file, fingerprints the whole file instead (a
multi-line PEM private key). Exits 1, printing nothing on standard output, if
any line is refused (all refused lines are reported on standard error).

Flags:
`

// runFingerprint implements "leakwatch fingerprint".
func runFingerprint(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fingerprint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	allowWeak := fs.Bool("allow-weak", false, "register secrets that fail the strength check (short or low-entropy)")
	file := fs.String("file", "", "fingerprint the whole `PATH` (e.g. a PEM private key) instead of standard input")
	if code, ok := parseFlags(fs, args, fingerprintUsage, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "fingerprint: unexpected arguments; secrets are read from standard input")
		return 2
	}
	opts := matcher.ComputeOpts{AllowWeak: *allowWeak}
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			fmt.Fprintf(stderr, "fingerprint: %v\n", err)
			return 2
		}
		f, err := matcher.Compute([]byte(strings.TrimRight(string(b), "\r\n")), opts)
		if err != nil {
			fmt.Fprintf(stderr, "fingerprint: %s: %v\n", *file, err)
			return 1
		}
		fmt.Fprintln(stdout, f)
		return 0
	}
	fps, refused, err := matcher.FingerprintLines(stdin, opts)
	for _, r := range refused {
		fmt.Fprintf(stderr, "fingerprint: refused %v\n", r)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fingerprint: %v\n", err)
		return 2
	}
	if len(refused) > 0 {
		if !*allowWeak {
			fmt.Fprintln(stderr, "fingerprint: nothing printed; fix or remove the refused lines (--allow-weak registers weak secrets)")
		}
		return 1
	}
	for _, f := range fps {
		fmt.Fprintln(stdout, f)
	}
	return 0
}
