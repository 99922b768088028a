package github

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

func TestAddedLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		patch string
		text  string
		lines []int
	}{
		{"one hunk", "@@ -1,2 +1,3 @@\n a\n+b\n c", "b", []int{2}},
		{"removed lines do not count", "@@ -10,3 +10,3 @@\n ctx\n-old\n+new\n ctx", "new", []int{11}},
		{"two hunks", "@@ -1 +1,2 @@\n a\n+b\n@@ -50,2 +51,3 @@ func x() {\n y\n+z1\n+z2\n w", "b\nz1\nz2", []int{2, 52, 53}},
		{"new file", "@@ -0,0 +1,3 @@\n+l1\n+l2\n+l3", "l1\nl2\nl3", []int{1, 2, 3}},
		{"no newline marker", "@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file", "b", []int{1}},
		{"crlf", "@@ -1,1 +1,2 @@\n a\r\n+b\r", "b", []int{2}},
		{"deletion only", "@@ -1,2 +1 @@\n a\n-b", "", nil},
		{"header without count", "@@ -3 +7 @@\n+x", "x", []int{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			text, lines := AddedLines([]byte(tt.patch))
			if string(text) != tt.text || !reflect.DeepEqual(lines, tt.lines) {
				t.Fatalf("AddedLines = %q %v, want %q %v", text, lines, tt.text, tt.lines)
			}
		})
	}
}

// TestAddedLinesRealPatches checks the line numbers against GitHub's own
// compare response (PyGithub's recording): every added line, counted from
// its hunk header, must agree with the hunk's declared new-file length.
func TestAddedLinesRealPatches(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/compare_PyGithub_v0.6...v0.7.json")
	if err != nil {
		t.Fatal(err)
	}
	var cmp struct {
		Files []struct {
			Filename  string `json:"filename"`
			Additions int    `json:"additions"`
			Patch     string `json:"patch"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &cmp); err != nil {
		t.Fatal(err)
	}
	if len(cmp.Files) == 0 {
		t.Fatal("no files in the recorded compare")
	}
	for _, f := range cmp.Files {
		text, lines := AddedLines([]byte(f.Patch))
		if len(lines) != f.Additions {
			t.Errorf("%s: %d added lines, GitHub says %d", f.Filename, len(lines), f.Additions)
		}
		for i := 1; i < len(lines); i++ {
			if lines[i] <= lines[i-1] {
				t.Errorf("%s: line numbers not increasing: %v", f.Filename, lines)
				break
			}
		}
		if len(lines) > 0 && len(text) == 0 {
			t.Errorf("%s: lines but no text", f.Filename)
		}
	}
}

func TestBlobURL(t *testing.T) {
	t.Parallel()
	got := BlobURL("octo/app", "abc123", "dir with space/config#1.yml")
	want := "https://github.com/octo/app/blob/abc123/dir%20with%20space/config%231.yml"
	if got != want {
		t.Fatalf("BlobURL = %q, want %q", got, want)
	}
}
