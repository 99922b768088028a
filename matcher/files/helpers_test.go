package files

import (
	"encoding/binary"
	"testing"
	"unicode/utf16"

	"github.com/leakwatch/leakwatch/matcher"
)

// ghToken is a fake, high-entropy, provider-shaped test secret.
const ghToken = "ghp_R4nd0mT0kenV4lue9xQ2ZpL8mN3bV7cX1zK5"

func testSet(t testing.TB, secrets ...string) *matcher.Set {
	t.Helper()
	var fps []matcher.Fingerprint
	for _, s := range secrets {
		f, err := matcher.Compute([]byte(s), matcher.ComputeOpts{})
		if err != nil {
			t.Fatalf("compute: %v", err)
		}
		fps = append(fps, f)
	}
	return matcher.NewSet(fps)
}

func utf16le(s string, bom bool) string {
	var b []byte
	if bom {
		b = append(b, 0xff, 0xfe)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return string(b)
}
