package matcher

import (
	"errors"
	"strings"
	"testing"
)

func TestComputeAndParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		secret   string
		provider string
		prefix   string
	}{
		{"github", ghToken, "github", "ghp_"},
		{"github fine-grained", "github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234", "github", "github_pat_"},
		{"aws key id", "AKIAQ3EGPXW7ZL4MB6TR", "aws", "AKIA"},
		{"slack", slackTok, "slack", "xoxb-"},
		{"stripe", "sk_live_51HqLyjWDarjtT1zdp7dcXq9", "stripe", "sk_live_"},
		{"gitlab", "glpat-Xq7vRz2pLk9WtN4bB6yH", "gitlab", "glpat-"},
		{"google", "AIzaSyD8f7Kq2LzX7vB4nM1pR6tY3wC5hJ0dG8s", "google", "AIza"},
		{"npm", "npm_Rq4vZ8pLk2WtN7bB6yH1cJdXq9mT3sF5gA0e", "npm", "npm_"},
		{"sendgrid", "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", "sendgrid", "SG."},
		{"no prefix", plainKey, "", ""},
		{"aws secret", awsKey, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Compute([]byte(tt.secret), ComputeOpts{AllowWeak: tt.name == "aws key id"})
			if err != nil {
				t.Fatalf("compute: %v", err)
			}
			if f.Provider() != tt.provider || f.Prefix() != tt.prefix || f.Len() != len(tt.secret) {
				t.Errorf("provider %q prefix %q len %d", f.Provider(), f.Prefix(), f.Len())
			}
			s := f.String()
			if !strings.HasPrefix(s, "lw1:t:"+tt.prefix+":") && !strings.HasPrefix(s, "lw1:s:"+tt.prefix+":") {
				t.Errorf("fingerprint %q", s)
			}
			if strings.Contains(s, tt.secret[len(tt.prefix):len(tt.prefix)+6]) {
				t.Errorf("fingerprint %q holds secret bytes", s)
			}
			p, err := ParseFingerprint(s)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if p != f || p.String() != s {
				t.Errorf("round trip: %q != %q", p.String(), s)
			}
			// Deterministic: the same secret always gives the same line.
			g, _ := Compute([]byte(tt.secret), ComputeOpts{AllowWeak: true})
			if g.String() != s {
				t.Errorf("not deterministic")
			}
		})
	}
}

// TestFingerprintGolden pins the format: a browser implementation must
// produce exactly these lines (web's TestBrowserFingerprintMatchesGo checks
// the same secrets).
func TestFingerprintGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ secret, want string }{
		{ghToken, "lw1:t:ghp_:40:85fcc17517:c72c11aca89295e0dc3c82f84cb84667"},
		// Symbols: kind w, long (40-bit window) and short (32-bit).
		{"Xk3$p9Lq!mZ#v8Rw@2Nt", "lw1:w::20:"},
		{"correct horse!battery staple", "lw1:w::28:"},
		{"Xk3$p9Lq!m", "lw1:w::10:"},
		// Bytes outside ASCII: kind u.
		{"pässwörd-Zq8Wm3Xr7Tn2", "lw1:u::23:"},
		// A token prefix, then a byte no token holds: not kind t.
		{"ghp_R4nd0mT0kenV4lue9xQ2!", "lw1:w:ghp_:25:"},
	} {
		f, err := Compute([]byte(tc.secret), ComputeOpts{AllowWeak: true})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(f.String(), tc.want) {
			t.Errorf("%.6s: got %q, want prefix %q", tc.secret, f.String(), tc.want)
		}
		rest := []byte(tc.secret)[len(f.prefix):]
		win := windowWord(rest, f.long())
		if f.kind == kindToken {
			win = windowLong(rest)
		}
		if f.window != win {
			t.Errorf("%.6s: window %x, want %x", tc.secret, f.window, win)
		}
	}
	// The window of "correct horse!battery staple" is its first 8 bytes,
	// "correct ", the top 40 bits of their product; a short secret's, the
	// top 32 bits, as for kind s.
	if f, want := mustCompute(t, "correct horse!battery staple"), (le64([]byte("correct "))*winK)>>24; f.window != want {
		t.Errorf("window %x, want %x", f.window, want)
	}
	if f, want := mustComputeWeak(t, "Xk3$p9Lq!m"), (le64([]byte("Xk3$p9Lq"))*winK)>>32; f.window != want {
		t.Errorf("short window %x, want %x", f.window, want)
	}
}

func TestComputeRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		weak   bool // refused as weak (AllowWeak overrides)
	}{
		{"short", "Xk3$p9Lq!m", true},
		{"dictionary", "password1234567890secret", true},
		{"repeated", "abababababababababababab", true},
		{"sequence", "abcdefghijklmnopqrstuvwxyz", true},
		{"digits", "1234987650192837465", true},
		{"prefix only", "ghp_abc", true},
		{"empty", "", false},
		{"multi-line", "abc\ndef1234567890XYZabc", false},
		{"surrounding space", " " + plainKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compute([]byte(tt.secret), ComputeOpts{})
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, ErrWeakSecret) != tt.weak {
				t.Errorf("errors.Is(ErrWeakSecret) = %v: %v", !tt.weak, err)
			}
			if len(tt.secret) > 4 && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error leaks the secret: %v", err)
			}
			if tt.weak && tt.name != "prefix only" {
				if _, err := Compute([]byte(tt.secret), ComputeOpts{AllowWeak: true}); err != nil {
					t.Errorf("AllowWeak: %v", err)
				}
			}
		})
	}
}

func TestParseFingerprintErrors(t *testing.T) {
	t.Parallel()
	good := mustCompute(t, ghToken).String()
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"plaintext", ghToken},
		{"version", strings.Replace(good, "lw1", "lw2", 1)},
		{"fields", good + ":x"},
		{"kind", strings.Replace(good, ":t:", ":x:", 1)},
		{"prefix", strings.Replace(good, "ghp_", "zzz_", 1)},
		{"length", strings.Replace(good, ":40:", ":040:", 1)},
		{"length too short", strings.Replace(good, ":40:", ":5:", 1)},
		{"window", strings.Replace(good, "85fcc17517", "85FCC17517", 1)},
		{"token kind too short", "lw1:t::12:00000000:" + strings.Repeat("0", 32)},
		{"window width", strings.Replace(good, "85fcc17517", "85fcc175", 1)},
		{"hash", good[:len(good)-1]},
		{"trailing space", good + " "},
		{"pem with prefix", "lw1:pem:ghp_:100::" + strings.Repeat("0", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseFingerprint(tt.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if len(tt.in) > 10 && strings.Contains(err.Error(), tt.in) {
				t.Errorf("error echoes input: %v", err)
			}
		})
	}
}

func TestLooksLikeSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{ghToken, true},
		{awsKey, true},
		{plainKey, true},
		{testPEM(t), true},
		{mustCompute(t, ghToken).String(), false},
		{"hello world", false},
		{"my-registered-key", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := LooksLikeSecret(tt.in); got != tt.want {
			t.Errorf("LooksLikeSecret(%.20q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
