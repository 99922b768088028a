// Package incidents owns incidents: one per exposure of a registered key,
// with every sighting recorded as an occurrence, the phases a security team
// drives it through, its timeline, and the River jobs that follow each step.
//
// # Phases
//
//	identified → contained → eradicated → recovered → closed (with a review)
//
// plus the side exits false_positive and accepted_risk (with a reason) from
// any open phase, and reopen from any closed one.
//
// Record opens an incident (identified: severity from ComputeSeverity, the
// org's default assignee, the key's owner) for the first sighting of a key;
// later sightings while it is open are occurrences, and one more exposed than
// those before (public where they were private, or in a repository with a
// wider reach) raises the severity, never lowers it. A sighting of a key whose
// incident is closed reopens it as a regression, unless the secret seen is
// one the key was rotated away from (dead: recorded, nobody alerted).
// Containment comes from the key's revocation endpoint answering "revoked"
// (RevocationWorker), a built-in revoker at match time (crawler.Finding.Revoked, see
// crawler/revoke), the registry marking the key revoked
// (KeyStateChangedTx) or a member (MarkContained). Rotation in the registry
// eradicates (KeyRotatedTx); ConfirmRecovery and Close (with a Review)
// finish the response.
//
// # Guarantees
//
// Every state change, its timeline entry and the jobs it causes (revocation
// requests; whatever the TimelineNotifier queues) are written in one
// transaction, and every job is idempotent: a crash anywhere leaves no
// incident without its next step and no step visibly done twice. Findings of
// one key are serialised by an advisory lock, so concurrent sightings
// converge on one incident.
//
// # Revocation requests
//
// RevocationWorker POSTs a RevocationRequest (never the secret) signed per Standard
// Webhooks by internal/platform/webhook: HMAC "v1" with the endpoint's secret and/or
// Ed25519 "v1a" with Leakwatch's published keys. The webhook-id stays the
// same across retries; answers other than revoked/manual/failed are retried
// with backoff and jitter (River snoozes, counted in the delivery log) for up
// to 24 hours, then containment failed is flagged and escalated. Every
// attempt is kept (webhook_attempts). incidents/revoketest is the
// reference receiver.
//
// # SLA
//
// Sweep, a leader-only periodic River job, escalates incidents not
// acknowledged within the org's limit for their severity (Settings; default
// 15 minutes for critical) and reminds about incidents stuck in a phase. Its
// clock is the Service's, which tests replace.
package incidents
