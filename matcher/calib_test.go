package matcher

// Calibration benchmarks: the same machine's speed for a SIMD byte search,
// a one-multiplication-per-byte loop and SHA-256, to read the Scan figures
// against (this machine is shared, so absolute figures vary).

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

func BenchmarkCalibIndexByte(b *testing.B) {
	doc := benchCorpus()
	b.SetBytes(int64(len(doc)))
	cpu0 := cpuTime()
	for b.Loop() {
		bytes.IndexByte(doc, 0)
	}
	reportCPU(b, cpu0, len(doc))
}

func BenchmarkCalibMulLoop(b *testing.B) {
	doc := benchCorpus()
	b.SetBytes(int64(len(doc)))
	var s uint64
	cpu0 := cpuTime()
	for b.Loop() {
		for i := 0; i+8 <= len(doc); i++ {
			s += le64(doc[i:]) * winK >> 40
		}
	}
	reportCPU(b, cpu0, len(doc))
	_ = s
}

func BenchmarkCalibSHA256(b *testing.B) {
	doc := benchCorpus()[:1<<20]
	b.SetBytes(int64(len(doc)))
	cpu0 := cpuTime()
	for b.Loop() {
		sha256.Sum256(doc)
	}
	reportCPU(b, cpu0, len(doc))
}
