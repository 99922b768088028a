package github

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"
)

// AddedLines returns the lines a unified-diff patch (GitHub's per-file
// "patch": hunks only, no file headers) adds, joined by '\n', and for each
// of them its line number in the new file. Context and removed lines are
// left out: a secret deleted by a commit is not a new leak there.
func AddedLines(patch []byte) (text []byte, lines []int) {
	newLine := 0
	inHunk := false
	text = make([]byte, 0, len(patch)/2)
	for len(patch) > 0 {
		var l []byte
		if i := bytes.IndexByte(patch, '\n'); i >= 0 {
			l, patch = patch[:i], patch[i+1:]
		} else {
			l, patch = patch, nil
		}
		if bytes.HasPrefix(l, []byte("@@")) {
			if n, ok := hunkNewStart(l); ok {
				newLine, inHunk = n, true
				continue
			}
		}
		if !inHunk {
			continue
		}
		switch {
		case len(l) == 0:
			// Some tools drop the space of an empty context line.
			newLine++
		case l[0] == '+':
			if len(lines) > 0 {
				text = append(text, '\n')
			}
			text = append(text, bytes.TrimSuffix(l[1:], []byte("\r"))...)
			lines = append(lines, newLine)
			newLine++
		case l[0] == ' ':
			newLine++
		case l[0] == '-', l[0] == '\\':
			// Removed line, or "\ No newline at end of file".
		default:
			newLine++
		}
	}
	return text, lines
}

// hunkNewStart reads c from "@@ -a,b +c,d @@ …".
func hunkNewStart(l []byte) (int, bool) {
	s := string(l)
	i := strings.Index(s, " +")
	if i < 0 {
		return 0, false
	}
	s = s[i+2:]
	end := strings.IndexAny(s, ", @")
	if end < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(s[:end])
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// BlobURL is the github.com page of path at commit sha; a finding appends
// "#L<line>".
func BlobURL(repo, sha, path string) string {
	parts := strings.Split(path, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return "https://github.com/" + repo + "/blob/" + sha + "/" + strings.Join(parts, "/")
}

// looksBinary reports whether content is binary (a NUL in its first 8 KB,
// as git decides).
func looksBinary(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0
}
