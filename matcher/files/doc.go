// Package files reads file trees for `leakwatch scan` and scans them with a
// matcher.Set: a walk with getdents and openat relative to open
// directories, batches of small files read through io_uring, large files
// read into prefaulted mappings or streamed, on every core.
//
// It is apart from matcher so that the scanner stays pure Go with no system
// calls, and the services that scan public text (crawler, incidents) build
// without the Linux reader, its raw system calls and its unsafe code. Where
// io_uring or the raw calls are unavailable (another OS, a seccomp profile,
// an old kernel) it falls back to the standard library; Opts.NoRing and
// Opts.StreamThreshold choose the paths in tests, not package variables.
package files
