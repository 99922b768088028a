package crawler

import (
	"context"
	"log/slog"

	"github.com/leakwatch/leakwatch/matcher"
)

// Revoker revokes leaked credentials at match time, given their plaintext
// (crawler/revoke.GitHub is one). It is the only consumer of matched
// plaintext: the bytes go from the scanned document straight into Revoke,
// synchronously, and are neither copied into findings nor stored or queued.
type Revoker interface {
	// Name is the timeline actor of a revocation ("github-credentials-api").
	Name() string
	// Accepts reports whether token, matched for a key of provider, is a
	// credential this revoker can revoke.
	Accepts(provider string, token []byte) bool
	// Revoke revokes every token, in as few calls as the provider allows.
	// It must not retain the tokens.
	Revoke(ctx context.Context, tokens [][]byte) error
}

// WithRevoker turns on built-in revocation of plainly matched credentials r
// accepts. It returns p.
func (p *Pipeline) WithRevoker(r Revoker, logger *slog.Logger) *Pipeline {
	p.revoker, p.revokeLog = r, logger
	return p
}

// revokeDocument revokes, in one batch per document, the plaintext of the
// matches in found that the revoker accepts, and returns the revoker's name
// for each revoked match index. Only "plain" matches qualify: for encoded
// matches the span is the encoded run, not the credential. A failure only
// means the incident takes the ordinary containment path.
func (p *Pipeline) revokeDocument(ctx context.Context, d *Document, found []matcher.Finding) map[int]string {
	if p.revoker == nil {
		return nil
	}
	var idx []int
	var tokens [][]byte
	seen := map[string]bool{}
	for j, m := range found {
		if m.Encoding != "plain" || m.Offset < 0 || m.Length <= 0 || m.Offset+m.Length > len(d.Text) {
			continue
		}
		tok := d.Text[m.Offset : m.Offset+m.Length : m.Offset+m.Length]
		if !p.revoker.Accepts(m.Provider, tok) {
			continue
		}
		idx = append(idx, j)
		if !seen[m.Fingerprint] {
			seen[m.Fingerprint] = true
			tokens = append(tokens, tok)
		}
	}
	if len(tokens) == 0 {
		return nil
	}
	err := p.revoker.Revoke(ctx, tokens)
	if err != nil {
		if p.revokeLog != nil {
			p.revokeLog.Warn("built-in revocation failed; incidents take the webhook path",
				slog.String("revoker", p.revoker.Name()), slog.String("event_id", d.EventID), slog.Int("credentials", len(tokens)), slog.Any("error", err))
		}
		return nil
	}
	out := make(map[int]string, len(idx))
	for _, j := range idx {
		out[j] = p.revoker.Name()
	}
	return out
}
