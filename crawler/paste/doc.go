// Package paste crawls paste sites and public gists: GitHub's public gists,
// Pastebin's scraping API and any site that publishes its recent pastes as a
// JSON, RSS or Atom feed.
//
// Each site is a Source: a small type that lists recent pastes and fetches the
// text of one. Everything else is shared:
//
//   - A Poller per source lists it at the source's pace, records every new
//     paste (deduplicated by source and paste key) and queues one River fetch
//     job per paste in the same transaction that advances the source's
//     checkpoint. Exactly one process polls a source: the holder of the
//     source's advisory lock (Run).
//   - The FetchWorker fetches the text and hands it to the shared
//     crawler.Pipeline, which scans with the current key set and records
//     findings with their provenance. The pipeline de-duplicates by content
//     hash, so a text reposted to three sites is scanned once and recorded
//     three times. A paste deleted before it is fetched (404/410) is counted
//     and not retried; a malformed one is counted as a skip with its reason.
//   - Health (Store.Health, the Prometheus collector) reports per source a
//     state (pending, ok, degraded, unauthorised, failing), the last success,
//     items per minute, fetch errors, lag from paste date to scan, and gaps:
//     a listing whose items are all new means some pastes were missed
//     between polls. A source that cannot be read never looks like a source
//     with nothing in it.
//
// No paste text is stored: only keys, dates and counts.
package paste
