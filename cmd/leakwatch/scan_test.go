package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakwatch/leakwatch/matcher"
)

type scanBundle struct {
	dir     string
	fpFile  string
	secrets []string
}

func setupScan(t *testing.T) scanBundle {
	t.Helper()
	dir := t.TempDir()
	var lines []string
	for _, s := range []string{testGitHubToken, testAWSSecret} {
		f, err := matcher.Compute([]byte(s), matcher.ComputeOpts{})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, f.String())
	}
	fpFile := filepath.Join(dir, "fingerprints.txt")
	write(t, fpFile, "# registered\n"+strings.Join(lines, "\n")+"\n")
	return scanBundle{dir: dir, fpFile: fpFile, secrets: []string{testGitHubToken, testAWSSecret}}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runSc(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runScan(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestScanCommand(t *testing.T) {
	t.Parallel()
	b := setupScan(t)
	tree := filepath.Join(b.dir, "tree")
	write(t, filepath.Join(tree, "b.env"), "X=1\nGITHUB_TOKEN="+testGitHubToken+"\n")
	write(t, filepath.Join(tree, "a", "secret.yaml"), "data:\n  key: "+base64.StdEncoding.EncodeToString([]byte(testAWSSecret))+"\n")
	write(t, filepath.Join(tree, "clean.txt"), "nothing here\n")
	write(t, filepath.Join(tree, ".git", "config"), testGitHubToken)
	write(t, filepath.Join(tree, "bin.dat"), "\x00\x01\x02"+testGitHubToken+"\x00\xff")
	u16 := []byte{0xff, 0xfe}
	for _, c := range "k=" + testAWSSecret {
		u16 = append(u16, byte(c), 0)
	}
	write(t, filepath.Join(tree, "u16.txt"), string(u16))

	code, out, errOut := runSc(t, "", "--fingerprints", b.fpFile, tree)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
	}
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad JSONL line %q: %v", l, err)
		}
		got = append(got, m)
	}
	wantPaths := []string{"a/secret.yaml", "b.env", "u16.txt"}
	if len(got) != len(wantPaths) {
		t.Fatalf("got %d findings, want %d: %s", len(got), len(wantPaths), out)
	}
	for i, m := range got {
		rel, _ := filepath.Rel(tree, m["path"].(string))
		if filepath.ToSlash(rel) != wantPaths[i] {
			t.Errorf("finding %d in %s, want %s (sorted by path)", i, rel, wantPaths[i])
		}
		for _, k := range []string{"path", "line", "column", "offset", "fingerprint", "encoding", "preview"} {
			if _, ok := m[k]; !ok {
				t.Errorf("finding lacks %q", k)
			}
		}
	}
	if got[1]["line"].(float64) != 2 || got[1]["column"].(float64) != 14 || got[0]["encoding"] != "base64" || got[2]["encoding"] != "utf16le" {
		t.Errorf("unexpected findings: %s", out)
	}
	for _, s := range b.secrets {
		if strings.Contains(out+errOut, s[4:20]) {
			t.Errorf("output leaks a secret")
		}
	}
}

func TestScanCommandExitCodes(t *testing.T) {
	t.Parallel()
	b := setupScan(t)
	clean := filepath.Join(b.dir, "clean.txt")
	write(t, clean, "nothing\n")
	badFP := filepath.Join(b.dir, "bad.txt")
	write(t, badFP, testGitHubToken+"\n")
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		errHas string
	}{
		{"clean file", "", []string{"--fingerprints", b.fpFile, clean}, 0, ""},
		{"stdin with secret", "x " + testAWSSecret, []string{"--fingerprints", b.fpFile, "-"}, 1, ""},
		{"stdin clean", "x", []string{"--fingerprints", b.fpFile, "-"}, 0, ""},
		{"missing path", "", []string{"--fingerprints", b.fpFile, filepath.Join(b.dir, "nope")}, 2, "nope"},
		{"no fingerprints flag", "", []string{clean}, 2, "--fingerprints is required"},
		{"plaintext in fingerprint file", "", []string{"--fingerprints", badFP, clean}, 2, "plaintext secret"},
		{"bad format", "", []string{"--fingerprints", b.fpFile, "--format", "xml", clean}, 2, "unknown --format"},
		{"no path", "", []string{"--fingerprints", b.fpFile}, 2, "no PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runSc(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if !strings.Contains(errOut, tt.errHas) {
				t.Errorf("stderr %q lacks %q", errOut, tt.errHas)
			}
			if strings.Contains(errOut, testGitHubToken[4:20]) {
				t.Errorf("stderr leaks the secret")
			}
		})
	}
}

func TestScanCommandSARIF(t *testing.T) {
	t.Parallel()
	b := setupScan(t)
	code, out, errOut := runSc(t, "TOKEN="+testGitHubToken+"\n", "--fingerprints", b.fpFile, "--format", "sarif", "-")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var log struct {
		Version string `json:"version"`
		Schema  string `json:"$schema"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string                `json:"ruleId"`
				Level     string                `json:"level"`
				Message   struct{ Text string } `json:"message"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string } `json:"artifactLocation"`
						Region           struct {
							StartLine   int `json:"startLine"`
							StartColumn int `json:"startColumn"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				PartialFingerprints map[string]string `json:"partialFingerprints"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatalf("SARIF is not JSON: %v", err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "leakwatch" {
		t.Fatalf("bad SARIF header: %s", out)
	}
	r := log.Runs[0].Results
	if len(r) != 1 || r[0].RuleID != log.Runs[0].Tool.Driver.Rules[0].ID || r[0].Level != "error" {
		t.Fatalf("bad results: %s", out)
	}
	loc := r[0].Locations[0].PhysicalLocation
	if loc.ArtifactLocation.URI != "stdin" || loc.Region.StartLine != 1 || loc.Region.StartColumn != 7 {
		t.Errorf("bad location: %+v", loc)
	}
	if strings.Contains(out, testGitHubToken[4:20]) {
		t.Errorf("SARIF leaks the secret")
	}
	// Nothing found is still a valid log with an empty result list.
	code, out, _ = runSc(t, "clean", "--fingerprints", b.fpFile, "--format", "sarif", "-")
	if code != 0 || !strings.Contains(out, `"results": []`) {
		t.Errorf("clean SARIF: exit %d, %s", code, out)
	}
}

func TestScanHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h"} {
		code, out, errOut := runSc(t, "", arg)
		if code != 0 {
			t.Errorf("%s: exit %d", arg, code)
		}
		if strings.Count(out, "Usage:") != 1 || errOut != "" {
			t.Errorf("%s: usage printed %d times on stdout, stderr %q; want once, nothing", arg, strings.Count(out, "Usage:"), errOut)
		}
		for _, flag := range []string{"-fingerprints", "-format", "-workers"} {
			if !strings.Contains(out, flag) {
				t.Errorf("%s: usage lacks %s", arg, flag)
			}
		}
	}
	code, out, errOut := runSc(t, "", "--bogus")
	if code != 2 || out != "" || !strings.Contains(errOut, "-bogus") || strings.Count(errOut, "Usage:") != 1 {
		t.Errorf("bad flag: exit %d, stdout %q, stderr %q; want 2, nothing, the error and the usage once", code, out, errOut)
	}
}

// TestDevNullIsNotATerminal: /dev/null is a character device, but no
// terminal; taking it for one turned on the progress bar (and a stat of
// every file) for "leakwatch scan ... 2>/dev/null".
func TestDevNullIsNotATerminal(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatal("/dev/null taken for a terminal")
	}
}
