-- Communication (issue 7): Slack connections with encrypted secrets, the
-- Slack messages posted per incident and per timeline entry (for in-place
-- updates, threads and idempotency), and outgoing event webhook
-- subscriptions.

-- One Slack connection per organisation: a bot token (interactive, living
-- messages) or, without one, the org's incoming-webhook URL
-- (orgs.slack_webhook_url). Secrets are secretbox ciphertexts
-- ("lwsb1:KEYID:…"); token_hint is the last characters, for display.
CREATE TABLE slack_connections (
    org_id             bigint PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    bot_token          text NOT NULL DEFAULT '',
    signing_secret     text NOT NULL DEFAULT '',
    token_hint         text NOT NULL DEFAULT '',
    default_channel    text NOT NULL DEFAULT '' CHECK (length(default_channel) <= 100),
    escalation_channel text NOT NULL DEFAULT '' CHECK (length(escalation_channel) <= 100),
    -- severity → {"channel": "C…", "mention": "here"|"channel"|"", "digest_only": bool}
    routes             jsonb NOT NULL DEFAULT '{}',
    broken_at          timestamptz,
    broken_reason      text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The living message of an incident. A row is claimed (committed, ts empty)
-- before posting; after a crash between post and commit the poster looks
-- for its own message (by metadata) in the channel before posting again.
CREATE TABLE slack_messages (
    incident_id bigint PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    channel     text NOT NULL,
    ts          text NOT NULL DEFAULT '',
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    posted_at   timestamptz,
    updated_at  timestamptz
);

-- One row per timeline entry posted to a channel: a threaded reply under
-- the living message, an escalation cross-post, or an incoming-webhook post
-- (channel '' ).
CREATE TABLE slack_posts (
    event_id    bigint NOT NULL REFERENCES incident_events (id) ON DELETE CASCADE,
    channel     text NOT NULL,
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    ts          text NOT NULL DEFAULT '',
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    posted_at   timestamptz,
    PRIMARY KEY (event_id, channel)
);

-- Outgoing event webhook subscriptions, delivered through the shared
-- webhook machinery (webhook_deliveries, kind 'event').
CREATE TABLE event_webhooks (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url         text NOT NULL CHECK (url ~ '^https?://'),
    hmac_secret text NOT NULL DEFAULT '',   -- secretbox ciphertext of "whsec_…"
    events      text[] NOT NULL DEFAULT '{}', -- empty: every event
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_webhooks_org_idx ON event_webhooks (org_id, id);
