package matcher

import (
	"errors"
	"strings"
	"testing"
)

func TestFingerprintLines(t *testing.T) {
	t.Parallel()
	const a, b = "ghp_R4nd0mT0kenV4lue9xQ2ZpL8mN3bV7cX1zK5", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8vB3nH2q"
	fps, refused, err := FingerprintLines(strings.NewReader(a+"\r\n \t\n"+b+"\npassword123\n\n"), ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{a, b} {
		want, _ := Compute([]byte(s), ComputeOpts{})
		if i >= len(fps) || fps[i] != want {
			t.Fatalf("fingerprints %v, want %v of %q at %d", fps, want, s, i)
		}
	}
	if len(fps) != 2 {
		t.Fatalf("%d fingerprints, want 2", len(fps))
	}
	// Lines 2 (white space only) and 5 are blank; line 4 is weak.
	var lines []int
	for _, r := range refused {
		var le *LineError
		if !errors.As(r, &le) {
			t.Fatalf("refusal %v is not a *LineError", r)
		}
		lines = append(lines, le.Line)
		if blank := le.Line == 2 || le.Line == 5; blank != errors.Is(r, ErrEmptyLine) {
			t.Errorf("line %d: %v", le.Line, r)
		}
		if strings.Contains(r.Error(), "password123") {
			t.Errorf("refusal holds the secret: %v", r)
		}
	}
	if len(lines) != 3 || lines[0] != 2 || lines[1] != 4 || lines[2] != 5 {
		t.Fatalf("refused lines %v, want [2 4 5]", lines)
	}
	if !errors.Is(refused[1], ErrWeakSecret) {
		t.Errorf("line 4: %v, want a weak-secret refusal", refused[1])
	}
}
