package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// parseFlags parses args into fs and prints the usage (text, then the
// flags) once: to stdout for --help (exit 0), to stderr after the error for
// a bad flag (exit 2). ok is false when the command should exit with code.
func parseFlags(fs *flag.FlagSet, args []string, text string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, once, where it belongs
	err := fs.Parse(args)
	if err == nil {
		return 0, true
	}
	w, code := stderr, 2
	if errors.Is(err, flag.ErrHelp) {
		w, code = stdout, 0
	}
	fs.SetOutput(w)
	fmt.Fprint(w, text)
	fs.PrintDefaults()
	return code, false
}
