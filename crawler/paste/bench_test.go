package paste

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/crawler/paste/pastetest"
)

// BenchmarkPastebinPollAndFetch measures one listing of 100 new pastes
// (4 KiB each, one holding a registered secret) and the 100 fetch jobs it
// queues, worked in turn: the per-paste cost of the crawler's own path
// (HTTP on loopback, PostgreSQL, scan, record).
func BenchmarkPastebinPollAndFetch(b *testing.B) {
	fake := pastetest.NewPastebin()
	defer fake.Close()
	src := NewPastebin(SourceConfig{Type: KindPastebin, Name: "pastebin", URL: fake.URL, Limit: 100, MaxBytes: MaxBytesDefault, Interval: Duration(time.Minute)}, fake.Client())
	bundle := setup(b, src)
	body := strings.Repeat("some ordinary pasted log line with numbers 1234567890\n", 75)
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 100; j++ {
			n++
			text := body + strconv.Itoa(n)
			if j == 50 {
				text = leakText(bundle.secret) + text
			}
			fake.Publish(pastetest.Paste{Key: "k" + strconv.Itoa(n), Date: time.Now(), Text: text})
		}
		if _, err := bundle.poller(src).PollOnce(bundle.ctx); err != nil {
			b.Fatal(err)
		}
		for _, a := range bundle.takeJobs(b) {
			if err := bundle.work(a, 1); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "pastes/s")
}
