//go:build !linux

package main

import "os"

// fileIsTerminal falls back to the file mode where TCGETS is not available
// (a character device: a terminal, or /dev/null).
func fileIsTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
