package github

import (
	"context"

	gh "github.com/google/go-github/v60/github"

	"github.com/leakwatch/leakwatch/crawler"
)

// Documents returns the text a public event carries, as documents with
// provenance (the scanning half of planEvent, which the service runs with
// the jobs). known is false for event types we do not recognise.
func Documents(ev *gh.Event) (docs []crawler.Document, known bool, err error) {
	w, err := planEvent(ev)
	return w.docs, w.known, err
}

// PollOnce polls the main feed once (the service polls in Run's loop).
func (p *Poller) PollOnce(ctx context.Context) (PollResult, error) { return p.PollFeed(ctx, p.feed) }
