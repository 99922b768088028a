package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/matcher"
)

// Fake, high-entropy test secrets.
const (
	testGitHubToken = "ghp_R4nd0mT0kenV4lue9xQ2ZpL8mN3bV7cX1zK5"
	testAWSSecret   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8vB3nH2q"
)

func runFP(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runFingerprint(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestFingerprintCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		lines    int
		errHas   string
		noSecret bool
	}{
		{"two secrets in order", testGitHubToken + "\r\n" + testAWSSecret + "\n", nil, 0, 2, "", true},
		{"no trailing newline", testGitHubToken, nil, 0, 1, "", true},
		{"weak refused", testGitHubToken + "\npassword123\n" + testAWSSecret + "\nsecret\n", nil, 1, 0, "line 2", true},
		{"weak allowed", "Xk3$p9Lq!mZ\n", []string{"--allow-weak"}, 0, 1, "", true},
		{"empty line refused", testGitHubToken + "\n\n", nil, 1, 0, "line 2: empty line", true},
		{"bad flag", "", []string{"--nope"}, 2, 0, "flag provided but not defined", true},
		{"stray argument", "", []string{testGitHubToken}, 2, 0, "unexpected arguments", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runFP(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if n := strings.Count(out, "\n"); n != tt.lines {
				t.Errorf("%d lines on stdout, want %d", n, tt.lines)
			}
			if tt.errHas != "" && !strings.Contains(errOut, tt.errHas) {
				t.Errorf("stderr %q lacks %q", errOut, tt.errHas)
			}
			for _, s := range []string{"R4nd0mT0ken", "K7MDENG", "password123"} {
				if strings.Contains(out+errOut, s) {
					t.Errorf("output leaks secret material %q", s)
				}
			}
		})
	}
	// Order and content: each line is the fingerprint of the input line.
	_, out, _ := runFP(t, testGitHubToken+"\n"+testAWSSecret+"\n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, s := range []string{testGitHubToken, testAWSSecret} {
		f, _ := matcher.Compute([]byte(s), matcher.ComputeOpts{})
		if lines[i] != f.String() {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], f.String())
		}
	}
	// Both refused lines are reported.
	_, _, errOut := runFP(t, "short\n"+testGitHubToken+"\nabc\n")
	if !strings.Contains(errOut, "line 1") || !strings.Contains(errOut, "line 3") {
		t.Errorf("refused lines not all reported: %q", errOut)
	}
}

func TestFingerprintHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h"} {
		code, out, _ := runFP(t, "", arg)
		if code != 0 {
			t.Errorf("%s: exit %d", arg, code)
		}
		for _, flag := range []string{"-allow-weak", "-file"} {
			if !strings.Contains(out, flag) {
				t.Errorf("%s: usage lacks %s: %q", arg, flag, out)
			}
		}
	}
}

func TestFingerprintFilePEM(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "-----BEGIN PRIVATE KEY-----\n" + strings.Repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n", 3) +
		"q8x2RzP0vK7wLm4nB5tY9dC3hF6jG1sA\n-----END PRIVATE KEY-----\n"
	path := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(key, "\n", "\r\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runFP(t, "", "--file", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "lw1:pem::") {
		t.Errorf("got %q", out)
	}
	f, _ := matcher.ParseFingerprint(strings.TrimSpace(out))
	if got := matcher.NewSet([]matcher.Fingerprint{f}).Scan([]byte("x\n" + key)); len(got) != 1 {
		t.Errorf("key registered from a CRLF file not found in LF text: %d", len(got))
	}
	if code, _, _ := runFP(t, "", "--file", filepath.Join(dir, "missing")); code != 2 {
		t.Errorf("missing file: exit %d, want 2", code)
	}
}
