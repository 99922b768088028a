// Package slack tells an organisation's Slack workspace about its
// incidents, and lets responders act from there.
//
// Each organisation has at most one connection (Store): a bot token with a
// default and an escalation channel, per-severity routes, and the app's
// signing secret — both secrets sealed with internal/platform/secretbox — or, with no
// bot token, the organisation's incoming-webhook URL (orgs.slack_webhook_url,
// sealed where a key is configured; see secretbox.SealIfConfigured), which
// can post but not update or receive clicks.
//
// The incidents workflow tells the Service of every timeline entry inside
// the transaction that wrote it (Notifier.TimelineEventTx), which queues a SyncArgs
// job. With a bot token, the first job of an incident posts its living
// message (a Block Kit alert with Acknowledge, Revoke now, Assign to me,
// False positive and Open in Leakwatch buttons); every later entry becomes a
// threaded reply and the living message is updated in place (chat.update).
// Escalations are also posted to the escalation channel. With an incoming
// webhook, the alert and the notable entries (regression, escalation, failed
// or manual containment, reminders) are posted as plain messages.
//
// Posting is idempotent per (incident) and per (timeline entry, channel): a
// row is claimed and committed before the post; if a worker dies between the
// post and recording its ts, the retry finds its own message in the channel
// by message metadata (conversations.history / conversations.replies) and
// adopts it instead of posting again. Rate limits (429 Retry-After) snooze
// the job for the time Slack asks; outages are retried with River's
// backoff; a revoked or invalid token marks the connection broken, which the
// integrations API shows.
//
// Clicks arrive at the interactivity endpoint (HandleInteraction), which
// checks Slack's v0 signature (5-minute window) and queues an ActionArgs job
// at once, so Slack gets its answer well within 3 seconds. The job maps the
// Slack user to a member of the organisation by email, checks the member's
// role and acts through incidents.Service, audited like the API.
//
// Everything that comes from a leak (repository, path, actor, preview,
// paste titles) is attacker-controlled and goes through Escape.
package slack
