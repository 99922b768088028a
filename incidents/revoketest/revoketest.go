// Package revoketest is a reference receiver for Leakwatch revocation
// requests: it verifies the Standard Webhooks signature (HMAC "v1" with the
// endpoint's secret and/or Ed25519 "v1a" with Leakwatch's public keys),
// rejects messages whose timestamp is more than 5 minutes off (replays),
// de-duplicates on webhook-id, and answers {"status": …}. Tests use it as
// the customer's endpoint; customers can read it as the contract in code.
package revoketest

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// Request is one request the receiver got.
type Request struct {
	ID       string
	Header   http.Header
	Body     []byte
	Verified bool
	Error    string // why verification failed
}

// Answer decides the reply to a verified, new request: HTTP status and body.
type Answer func(r Request) (status int, body string)

// Revoked is the default answer.
func Revoked(Request) (int, string) { return http.StatusOK, `{"status":"revoked"}` }

// Handler is the receiver.
type Handler struct {
	verifier webhook.Verifier

	mu       sync.Mutex
	answer   Answer
	requests []Request
	done     map[string]string // webhook-id → body already answered with 2xx
}

// NewHandler returns a receiver accepting signatures by any of secrets
// (HMAC) or publicKeys (Ed25519). now may be nil.
func NewHandler(secrets []string, publicKeys []ed25519.PublicKey, now func() time.Time) *Handler {
	return &Handler{
		verifier: webhook.Verifier{Secrets: secrets, PublicKeys: publicKeys, Tolerance: 5 * time.Minute, Now: now},
		answer:   Revoked,
		done:     map[string]string{},
	}
}

// AddSecret trusts one more HMAC secret (an endpoint's, once created).
func (h *Handler) AddSecret(secret string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.verifier.Secrets = append(h.verifier.Secrets, secret)
}

// AddPublicKey trusts one more Ed25519 public key (e.g. fetched from
// /.well-known/leakwatch/webhook-keys).
func (h *Handler) AddPublicKey(pk ed25519.PublicKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.verifier.PublicKeys = append(h.verifier.PublicKeys, pk)
}

// SetAnswer changes the reply to new requests.
func (h *Handler) SetAnswer(a Answer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answer = a
}

// Requests returns every request received, in order.
func (h *Handler) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.requests...)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	req := Request{ID: r.Header.Get(webhook.HeaderID), Header: r.Header.Clone(), Body: body}
	h.mu.Lock()
	v := h.verifier
	h.mu.Unlock()
	verr := v.Verify(r.Header, body)
	req.Verified = verr == nil
	if verr != nil {
		req.Error = verr.Error()
	}
	var payload struct {
		Type    string `json:"type"`
		EventID string `json:"event_id"`
	}
	if verr == nil && (json.Unmarshal(body, &payload) != nil || payload.Type != "revocation.requested") {
		verr = errors.New("not a revocation request")
		req.Verified, req.Error = false, verr.Error()
	}

	h.mu.Lock()
	h.requests = append(h.requests, req)
	if verr != nil {
		h.mu.Unlock()
		http.Error(w, req.Error, http.StatusUnauthorized)
		return
	}
	if prev, ok := h.done[req.ID]; ok {
		// A retry of a message already handled: same answer, no second action.
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, prev) //nolint:errcheck
		return
	}
	status, out := h.answer(req)
	if status >= 200 && status < 300 {
		h.done[req.ID] = out
	}
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, out) //nolint:errcheck
}

// Server is the receiver on a loopback HTTP server.
type Server struct {
	*httptest.Server
	*Handler
}

// NewServer starts a receiver; Close it when done.
func NewServer(secrets []string, publicKeys []ed25519.PublicKey, now func() time.Time) *Server {
	h := NewHandler(secrets, publicKeys, now)
	return &Server{Server: httptest.NewServer(h), Handler: h}
}
