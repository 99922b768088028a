package matcher_test

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"testing"

	"github.com/leakwatch/leakwatch/matcher"
)

// TestScanGHArchiveTexts scans every string in the real GH Archive sample.
// Found by the end-to-end test: Scan once looped forever (base64Runs) on a
// real ~9.8 KB pull request body. A hang here shows as a test timeout.
func TestScanGHArchiveTexts(t *testing.T) {
	t.Parallel()
	gz, err := os.Open("testdata/gharchive-2021-07-21-few-hours.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	f, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := matcher.Compute([]byte("ghp_q8Vz3LmR0tXw7KpJ2nYd5HcB9sFgT4aEuU1i"), matcher.ComputeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	set := matcher.NewSet([]matcher.Fingerprint{fp})
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				if got := set.Scan([]byte(x)); len(got) != 0 {
					t.Errorf("unexpected finding in corpus text: %+v", got)
				}
				n++
			case map[string]any:
				for _, e := range x {
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(v)
	}
	if n < 10000 {
		t.Fatalf("scanned only %d strings", n)
	}
}
