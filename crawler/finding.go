package crawler

import "time"

// Finding is one sighting of a registered key, with its provenance: what the
// Pipeline hands its Recorder (incidents.Service is the real one). It never
// holds the secret: Preview is already redacted by the matcher.
type Finding struct {
	KeyID       int64
	OrgID       int64
	Fingerprint string
	Source      string // "github", "gist", "pastebin", …
	EventID     string
	EventType   string
	URL         string // link to the exact place, with a line anchor where possible
	Repo        string
	Commit      string
	Path        string
	Line        int
	Column      int
	Encoding    string
	Actor       string
	Preview     string
	Title       string // of the paste, gist, issue or pull request (attacker-controlled)
	// Private says the text was not publicly readable (a private
	// repository's event in an organisation feed); Reach is its audience
	// where known (stars plus forks), 0 when unknown. Both feed severity.
	Private    bool
	Reach      int
	EventAt    time.Time // when the source says it happened (zero if unknown)
	FetchedAt  time.Time // when the text was read from the source (zero if unknown)
	DetectedAt time.Time
	// Revoked, if set, says the leaked credential itself was already revoked
	// at match time by a built-in revoker (e.g. "github-credentials-api"):
	// the incident is opened directly as contained.
	Revoked string
	// Via is how the sighting was found: "live" (also when empty) or
	// "archive" (backfilled from GH Archive after a gap in the live feed).
	Via string
}
