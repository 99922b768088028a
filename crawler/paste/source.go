package paste

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors a Source returns (wrapped) so the poller and the worker can
// tell what happened.
var (
	// ErrUnauthorised means the site refused us (an IP not whitelisted, a
	// bad or missing token): the source is unauthorised, not empty.
	ErrUnauthorised = errors.New("source refused access")
	// ErrGone means the paste was deleted or expired before we fetched it.
	ErrGone = errors.New("paste is gone")
	// ErrMalformed means the site answered something we cannot read
	// (malformed JSON, invalid UTF-8 in a listing, a missing key).
	ErrMalformed = errors.New("malformed response")
	// ErrNotReady means the site asks us to come back later.
	ErrNotReady = errors.New("paste not ready yet")
)

// Item is one paste a listing announced. It travels in the fetch job, so it
// holds metadata only, never text.
type Item struct {
	// ID is the site's key for the paste (Pastebin key, gist id, feed id).
	ID string `json:"id"`
	// Revision distinguishes versions of an editable paste (a gist's
	// updated_at); empty for immutable pastes.
	Revision string    `json:"revision,omitempty"`
	Title    string    `json:"title,omitempty"`
	Author   string    `json:"author,omitempty"`
	URL      string    `json:"url,omitempty"`     // the page a person reads
	RawURL   string    `json:"raw_url,omitempty"` // where the text is fetched
	Date     time.Time `json:"date"`              // when the paste was made or last edited
	Size     int64     `json:"size,omitempty"`    // as announced; 0 if unknown
	Syntax   string    `json:"syntax,omitempty"`
}

// Key identifies the paste within its source for deduplication: the ID, plus
// the revision for editable pastes, so an edited gist is scanned again.
func (it Item) Key() string {
	if it.Revision == "" {
		return it.ID
	}
	return it.ID + "@" + it.Revision
}

// Part is one text of a paste (a gist has one per file).
type Part struct {
	Name string // file name, or the paste title
	URL  string // the page showing this part
	Text []byte
	// Truncated says the text was longer than the source's max_bytes; only
	// the first max_bytes were kept.
	Truncated bool
}

// Listing is what one List call returned.
type Listing struct {
	Items []Item // newest first
	// Exhausted says the source itself guarantees the listing holds every
	// paste since the checkpoint (gists listed with since= and no further
	// page). Otherwise a listing whose items are all new means a gap.
	Exhausted bool
	// Malformed counts entries that could not be read and were skipped.
	Malformed int
}

// Checkpoint is what a source remembers between polls.
type Checkpoint struct {
	LastKey     string
	LastPasteAt time.Time // zero before the first poll
}

// Source is one paste site.
type Source interface {
	// Name is the source's name in checkpoints, metrics and provenance.
	Name() string
	// Kind is the source's type: "gist", "pastebin" or "feed".
	Kind() string
	// Interval is how often the source is listed.
	Interval() time.Duration
	// List returns the recent pastes, newest first.
	List(ctx context.Context, cp Checkpoint) (Listing, error)
	// Fetch returns the texts of one paste.
	Fetch(ctx context.Context, it Item) ([]Part, error)
}

// paced is implemented by sources whose fetches must be spaced out.
type paced interface {
	FetchInterval() time.Duration
}
