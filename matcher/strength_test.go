package matcher

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"testing"
)

// randomFrom returns n characters drawn uniformly from alphabet.
func randomFrom(t testing.TB, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

func randomUUIDv4(t testing.TB) string {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		t.Fatal(err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}

// TestStrengthCheckAcceptsRandomKeys registers 10,000 random strings of
// each format the registry supports: a random key must never be refused as
// weak (3 of 200 random AWS key IDs were). Two million random AWS key IDs
// estimated 57 bits at the lowest, against their bar of 52.
func TestStrengthCheckAcceptsRandomKeys(t *testing.T) {
	t.Parallel()
	const n = 10000
	formats := []struct {
		name string
		gen  func() string
	}{
		{"aws key id", func() string { return "AKIA" + randomFrom(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16) }},
		{"32 hex", func() string { return randomFrom(t, "0123456789abcdef", 32) }},
		{"uuid v4", func() string { return randomUUIDv4(t) }},
		{"20 alphanumeric", func() string {
			return randomFrom(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 20)
		}},
	}
	for _, f := range formats {
		refused := 0
		var example string
		for range n {
			s := f.gen()
			if _, err := Compute([]byte(s), ComputeOpts{}); err != nil {
				if !errors.Is(err, ErrWeakSecret) {
					t.Fatalf("%s: %v", f.name, err)
				}
				refused++
				example = s
			}
		}
		if refused > 0 {
			t.Errorf("%s: %d of %d random samples refused as weak (e.g. bits %.1f)", f.name, refused, n, EstimateBits([]byte(example[len(detectPrefix([]byte(example))):])))
		}
	}
}

// TestStrengthCheckRefusesPatterns keeps the check honest the other way:
// dictionary words, keyboard walks, runs and repeats stay refused.
func TestStrengthCheckRefusesPatterns(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"passwordpassword",
		"Password123456789",
		"qwertyuiopasdfgh",
		"1234567890123456",
		"abcdefghijklmnop",
		"aaaaaaaaaaaaaaaaaaaa",
		"changeme-changeme",
		"adminadminadmin1",
		"Summer2024!Summer2024!",
		"ABABABABABABABABABAB",
		"letmein-letmein-letmein",
		"qwerty123qwerty123",
		"zxcvbnmasdfghjkl",
		"1qaz2wsx3edc4rfv",
		"iloveyouiloveyou",
		"00000000000000000000000000000000",
		// AWS's documented placeholder and look-alikes, held to the
		// machine-format bar.
		"AKIAIOSFODNN7EXAMPLE",
		"AKIAXXXXXXXXXXXXXXXX",
		"AKIA1234567890ABCDEF",
		"AKIAABCDEFGHIJKLMNOP",
		"AKIATESTTESTTESTTEST",
		"ASIA2222222222222222",
	} {
		if _, err := Compute([]byte(s), ComputeOpts{}); !errors.Is(err, ErrWeakSecret) {
			t.Errorf("%q accepted (about %.0f bits), want refused as weak", s, EstimateBits([]byte(s)))
		}
	}
}
