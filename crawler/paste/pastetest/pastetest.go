// Package pastetest fakes the paste sites crawler/paste reads, in the manner
// of net/http/httptest: real HTTP servers on loopback serving real-format
// payloads. Each fake can be made to fail (an HTTP status, a raw body such as
// malformed JSON or invalid UTF-8) and recover, and can delete pastes.
package pastetest

import (
	"net/http"
	"net/http/httptest"
	"sync"
)

// faults is what every fake can be told to do instead of answering.
type faults struct {
	mu       sync.Mutex
	status   int    // answer every listing with this status
	body     []byte // answer every listing with this body (200)
	requests map[string]int
}

// Fail makes listings answer with status (0: recover).
func (f *faults) Fail(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = status
}

// ServeBody makes listings answer 200 with body, verbatim (nil: recover).
func (f *faults) ServeBody(body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body = body
}

// Requests returns how many requests reached path.
func (f *faults) Requests(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[path]
}

// intercept answers a listing with the configured fault, if any; the caller
// holds f.mu.
func (f *faults) intercept(w http.ResponseWriter, r *http.Request) bool {
	if f.requests == nil {
		f.requests = map[string]int{}
	}
	f.requests[r.URL.Path]++
	if f.status != 0 {
		http.Error(w, http.StatusText(f.status), f.status)
		return true
	}
	if f.body != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(f.body) //nolint:errcheck
		return true
	}
	return false
}

func newServer(mux *http.ServeMux) *httptest.Server { return httptest.NewServer(mux) }
