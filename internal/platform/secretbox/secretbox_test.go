package secretbox

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

func TestSealOpenRotate(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t), newKey(t)
	old, err := Parse("k1:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "xoxb-1234-5678-abcdefghijklmnop"
	ct, err := old.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ct, secret) || !strings.HasPrefix(ct, "lwsb1:k1:") {
		t.Fatalf("ciphertext %q", ct)
	}
	if got, err := old.Open(ct); err != nil || got != secret {
		t.Fatalf("open = %q, %v", got, err)
	}

	// Rotation: the new key seals, the old one still opens.
	both, err := Parse("k2:" + k2 + ",k1:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := both.Open(ct); err != nil || got != secret {
		t.Fatalf("open with rotated list = %q, %v", got, err)
	}
	re, changed, err := both.Reseal(ct)
	if err != nil || !changed || KeyID(re) != "k2" {
		t.Fatalf("reseal = %q %v %v", re, changed, err)
	}
	if _, changed, _ := both.Reseal(re); changed {
		t.Fatal("resealing a current ciphertext changed it")
	}
	onlyNew, _ := Parse("k2:" + k2)
	if got, err := onlyNew.Open(re); err != nil || got != secret {
		t.Fatalf("open resealed = %q, %v", got, err)
	}
	if _, err := onlyNew.Open(ct); !errors.Is(err, ErrNoKey) {
		t.Fatalf("open under a dropped key: %v", err)
	}

	// Tampering and key-id swapping fail authentication.
	tampered := ct[:len(ct)-2] + "AA"
	if _, err := old.Open(tampered); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("tampered: %v", err)
	}
	sameKeyOtherID, _ := Parse("k9:" + k1)
	if _, err := sameKeyOtherID.Open(strings.Replace(ct, ":k1:", ":k9:", 1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped key id: %v", err)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"", true},
		{"a:" + k, true},
		{"a:" + k + ", b:" + newKey(t), true},
		{k, false},
		{"a:" + k + ",a:" + k, false},
		{"a:c2hvcnQ=", false},
		{"bad id:" + k, false},
	} {
		_, err := Parse(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("Parse(%q) err = %v", tc.in, err)
		}
	}
	empty, _ := Parse("")
	if _, err := empty.Seal("x"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("seal without key: %v", err)
	}
}

// TestStoredValues covers credentials that may be stored in plaintext
// (set where no key is configured, or before encryption): sealed where a
// key is, opened either way, and sealed by a reseal.
func TestStoredValues(t *testing.T) {
	t.Parallel()
	box, err := Parse("k1:" + newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	var none *Box // no key configured
	const hook = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"

	plain, err := none.SealIfConfigured(hook)
	if err != nil || plain != hook {
		t.Fatalf("without a key: %q, %v", plain, err)
	}
	sealed, err := box.SealIfConfigured(hook)
	if err != nil || !Sealed(sealed) || strings.Contains(sealed, "hooks.slack.com") {
		t.Fatalf("with a key: %q, %v", sealed, err)
	}
	for _, stored := range []string{plain, sealed, ""} {
		want := hook
		if stored == "" {
			want = ""
		}
		if got, err := box.OpenStored(stored); err != nil || got != want {
			t.Errorf("OpenStored(%.12q) = %q, %v", stored, got, err)
		}
	}
	if _, err := none.OpenStored(sealed); !errors.Is(err, ErrNoKey) {
		t.Errorf("a sealed value without the key: %v", err)
	}

	re, changed, err := box.ResealStored(plain)
	if err != nil || !changed || !Sealed(re) {
		t.Fatalf("reseal plaintext = %q %v %v", re, changed, err)
	}
	if got, _ := box.OpenStored(re); got != hook {
		t.Fatalf("resealed opens to %q", got)
	}
	for _, stored := range []string{re, ""} {
		if _, changed, err := box.ResealStored(stored); changed || err != nil {
			t.Errorf("ResealStored(%.12q): changed %v, %v", stored, changed, err)
		}
	}
}
