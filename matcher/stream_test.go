package matcher

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestScanReaderMatchesScan checks that streaming gives exactly Scan's
// findings on inputs larger than a chunk, with secrets planted across
// chunk boundaries and inside an encoded run longer than a chunk.
func TestScanReaderMatchesScan(t *testing.T) {
	t.Parallel()
	set := testSet(t, ghToken, awsKey, slackTok)
	line := "some ordinary text, code(x) = y; // comment\n"
	var doc bytes.Buffer
	for doc.Len() < 3*ChunkSize {
		doc.WriteString(line)
		if doc.Len()%(ChunkSize/3) < len(line) {
			doc.WriteString("tok=" + ghToken + "\n")
		}
	}
	// Secrets straddling each chunk boundary region.
	for k := 1; k <= 3; k++ {
		b := doc.Bytes()
		at := k*ChunkSize - 10
		if at < len(b) {
			copy(b[at:], awsKey)
		}
	}
	// A base64 blob longer than a chunk, holding a secret near its end.
	blob := strings.Repeat("filler line of text\n", ChunkSize/16) + "SLACK=" + slackTok + "\n"
	doc.WriteString("blob: " + base64.StdEncoding.EncodeToString([]byte(blob)) + "\n")
	doc.WriteString("end " + ghToken)
	want := set.Scan(doc.Bytes())
	if len(want) < 10 {
		t.Fatalf("setup: Scan found only %d", len(want))
	}
	for _, tc := range []struct {
		name string
		r    io.Reader
	}{
		{"bytes reader", bytes.NewReader(doc.Bytes())},
		{"one byte reads", iotest.OneByteReader(bytes.NewReader(doc.Bytes()[:ChunkSize+ChunkSize/2]))},
		{"half reads", iotest.HalfReader(bytes.NewReader(doc.Bytes()))},
	} {
		got, err := set.ScanReader(tc.r)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		w := want
		if tc.name == "one byte reads" {
			w = set.Scan(doc.Bytes()[:ChunkSize+ChunkSize/2])
		}
		if !sameFindings(got, w) {
			t.Errorf("%s: ScanReader found %d, Scan %d", tc.name, len(got), len(w))
			for i := 0; i < min(len(got), len(w)); i++ {
				if got[i] != w[i] {
					t.Errorf("first difference at %d:\n got %+v\nwant %+v", i, got[i], w[i])
					break
				}
			}
		}
	}
}

func TestScanReaderError(t *testing.T) {
	t.Parallel()
	set := testSet(t, ghToken)
	_, err := set.ScanReader(iotest.ErrReader(io.ErrUnexpectedEOF))
	if err == nil {
		t.Fatal("want error")
	}
}
