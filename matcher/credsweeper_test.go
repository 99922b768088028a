package matcher

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// credsweeperDir holds Samsung/CredSweeper's test samples and expected
// findings (provenance and licence in testdata/README.md).
const credsweeperDir = "testdata/credsweeper"

type csFinding struct {
	Rule         string `json:"rule"`
	LineDataList []struct {
		Path    string `json:"path"`
		LineNum int    `json:"line_num"`
		Value   string `json:"value"`
	} `json:"line_data_list"`
}

// TestCredSweeperCorpus registers the value of every CredSweeper finding
// (ground-truth/output.json) whose sample file is present, scans samples/,
// and requires each value to be found on its line.
//
// Values are registered with AllowWeak, since many are test passwords, and
// trimmed of surrounding whitespace (CredSweeper reports some PEM lines with
// their indentation; Compute refuses surrounding whitespace by design).
// Deliberately excluded, because Compute refuses them (see csExcluded):
//   - values shorter than MinSecretLen (8) bytes: "", "keep", "qwI=",
//     "=JG+I", "cackle!", "dkajco1";
//   - a PEM BEGIN line alone ("-----BEGIN PRIVATE KEY-----"): a public
//     header, not a secret; the keys' body lines are registered;
//   - multi-line values that are not PEM keys (xml_data.xml joins an
//     indented base64 value across lines);
//   - the PEM key in pem_key.p.log.json, whose every line carries a log
//     timestamp ("2026-04-26 12:36:01 MIIM..."), so it has no PEM body.
//
// Two expectations are adjusted: in .xml samples CredSweeper reports the
// element's start line, not the value's own line, so the two lines after it
// are also accepted; and password_western.patch is ISO-8859-1, so the UTF-8 bytes of
// its value "dkajcö1" do not occur in it (not a miss: those bytes are absent).
func TestCredSweeperCorpus(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(credsweeperDir, "ground-truth", "output.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gt []csFinding
	if err := json.Unmarshal(raw, &gt); err != nil {
		t.Fatalf("parse output.json: %v", err)
	}
	type want struct {
		file  string
		line  int
		value string
		fp    string
	}
	var wants []want
	var fps []Fingerprint
	excluded := map[string]bool{}
	for _, f := range gt {
		for _, l := range f.LineDataList {
			file := strings.TrimPrefix(l.Path, "./tests/samples/")
			if _, err := os.Stat(filepath.Join(credsweeperDir, "samples", file)); err != nil {
				continue
			}
			v := strings.TrimSpace(l.Value)
			fp, err := Compute([]byte(v), ComputeOpts{AllowWeak: true})
			if err != nil {
				if why := csExcluded(v); why == "" {
					t.Errorf("%s:%d: value refused without a documented reason: %v", file, l.LineNum, err)
				}
				excluded[l.Value] = true
				continue
			}
			if file == "password_western.patch" && !utf8Absent(t, file, v) {
				t.Errorf("%s: expected the UTF-8 value to be absent", file)
			} else if file == "password_western.patch" {
				continue
			}
			fps = append(fps, fp)
			wants = append(wants, want{file, l.LineNum, v, fp.String()})
		}
	}
	set := NewSet(fps)
	files := map[string][]Finding{}
	found := 0
	for _, w := range wants {
		got, ok := files[w.file]
		if !ok {
			doc, err := os.ReadFile(filepath.Join(credsweeperDir, "samples", w.file))
			if err != nil {
				t.Fatal(err)
			}
			got = set.Scan(doc)
			files[w.file] = got
			for _, f := range got {
				if strings.Contains(f.Preview, w.value) && len(w.value) > 12 {
					t.Errorf("%s: preview leaks a registered value", w.file)
				}
			}
			// Streaming must agree with Scan.
			sr, err := set.ScanReader(bytes.NewReader(doc))
			if err != nil || !sameFindings(sr, got) {
				t.Errorf("%s: ScanReader differs from Scan (err %v)", w.file, err)
			}
		}
		hit := false
		for _, f := range got {
			if f.Fingerprint == w.fp && (f.Line == w.line || strings.HasSuffix(w.file, ".xml") && f.Line > w.line && f.Line <= w.line+2) {
				hit = true
				break
			}
		}
		if hit {
			found++
		} else {
			t.Errorf("%s:%d: registered value (%d bytes) not found on its line", w.file, w.line, len(w.value))
		}
	}
	t.Logf("credsweeper: %d values registered (%d distinct fingerprints), %d found on their line, %d distinct values excluded",
		len(wants), set.Len(), found, len(excluded))
}

// csExcluded names the documented reason a CredSweeper value is not
// registered, or "" if there is none.
func csExcluded(v string) string {
	switch {
	case len(v) < MinSecretLen:
		return "shorter than MinSecretLen"
	case strings.HasPrefix(v, "-----BEGIN") && strings.HasSuffix(v, "KEY-----") && !strings.Contains(v, "\n"):
		return "PEM header line alone"
	case strings.Contains(v, "\n") && !strings.Contains(v, "-----BEGIN"):
		return "multi-line value"
	case strings.Contains(v, "-----BEGIN") && strings.Contains(v, "2026-04-26 12:36:01 MII"):
		return "timestamped log lines"
	}
	return ""
}

func utf8Absent(t *testing.T, file, v string) bool {
	doc, err := os.ReadFile(filepath.Join(credsweeperDir, "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	return !bytes.Contains(doc, []byte(v))
}

func sameFindings(a, b []Finding) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
