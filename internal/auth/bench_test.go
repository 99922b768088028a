package auth_test

import (
	"testing"

	"github.com/leakwatch/leakwatch/internal/auth"
)

// BenchmarkVerifyPassword is the cost of one sign-in attempt with the
// default argon2id parameters (19 MiB, 2 passes), which is also what an
// offline guess against a stolen hash costs.
func BenchmarkVerifyPassword(b *testing.B) {
	h, err := auth.HashPassword("correct horse battery staple", auth.ArgonDefault)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := auth.VerifyPassword("correct horse battery staple", h); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
