-- Incident workflow (issue 6): phases with timestamps, a timeline, severity,
-- assignment, SLA escalation, reviews, revocation endpoints and the delivery
-- log of outgoing webhooks.

-- The phase replaces the open/closed state; state stays, derived, so the
-- partial unique index (one open incident per key) and readers of state keep
-- working.
ALTER TABLE incidents
    ADD COLUMN phase text NOT NULL DEFAULT 'identified' CHECK (phase IN (
        'identified', 'contained', 'eradicated', 'recovered', 'closed', 'false_positive', 'accepted_risk')),
    ADD COLUMN fingerprint        text NOT NULL DEFAULT '',
    ADD COLUMN severity           text NOT NULL DEFAULT 'high' CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    ADD COLUMN assignee_id        bigint,          -- a member (issue 4's members table); no FK so the order of migrations stays free
    ADD COLUMN acknowledged_at    timestamptz,
    ADD COLUMN acknowledged_by    text NOT NULL DEFAULT '',
    ADD COLUMN identified_at      timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN contained_at       timestamptz,
    ADD COLUMN eradicated_at      timestamptz,
    ADD COLUMN recovered_at       timestamptz,
    ADD COLUMN closed_at          timestamptz,
    ADD COLUMN escalated_at       timestamptz,
    ADD COLUMN reminded_at        timestamptz,     -- last "stuck in phase" reminder for the current phase
    ADD COLUMN regressions        integer NOT NULL DEFAULT 0,
    ADD COLUMN containment        text NOT NULL DEFAULT 'pending' CHECK (containment IN (
        'pending', 'requested', 'manual', 'failed', 'contained', 'none')),
    ADD COLUMN resolution_reason  text NOT NULL DEFAULT '',
    ADD COLUMN review_root_cause  text NOT NULL DEFAULT '',
    ADD COLUMN review_leak_vector text NOT NULL DEFAULT '',
    ADD COLUMN review_follow_ups  text NOT NULL DEFAULT '';

UPDATE incidents SET phase = 'closed', closed_at = now() WHERE state = 'closed';
UPDATE incidents i SET fingerprint = k.fingerprint, identified_at = i.created_at FROM keys k WHERE k.id = i.key_id;

DROP INDEX incidents_one_open_per_key;
ALTER TABLE incidents DROP COLUMN state;
ALTER TABLE incidents ADD COLUMN state text GENERATED ALWAYS AS (
    CASE WHEN phase IN ('closed', 'false_positive', 'accepted_risk') THEN 'closed' ELSE 'open' END) STORED;
CREATE UNIQUE INDEX incidents_one_open_per_key ON incidents (key_id) WHERE state = 'open';
CREATE INDEX incidents_key_idx ON incidents (key_id, id DESC);
CREATE INDEX incidents_sla_idx ON incidents (identified_at) WHERE state = 'open' AND acknowledged_at IS NULL AND escalated_at IS NULL;

-- The timeline: every transition, action and notification of an incident.
CREATE TABLE incident_events (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,              -- "system", "member:12", "revocation-webhook", …
    kind        text NOT NULL,              -- "opened", "transition", "note", "escalated", …
    from_phase  text NOT NULL DEFAULT '',
    to_phase    text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}',
    notified_at timestamptz                 -- set once the notification for this entry went out
);
CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, id);

-- Per-organisation workflow settings; an org without a row uses the defaults
-- in code (incidents.DefaultSettings).
CREATE TABLE incident_settings (
    org_id                    bigint PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    ack_critical_s            integer NOT NULL DEFAULT 900,
    ack_high_s                integer NOT NULL DEFAULT 3600,
    ack_medium_s              integer NOT NULL DEFAULT 14400,
    ack_low_s                 integer NOT NULL DEFAULT 86400,
    phase_limit_s             integer NOT NULL DEFAULT 86400,  -- reminder when stuck in a phase longer than this
    escalation_slack_url      text NOT NULL DEFAULT '',        -- empty: the org's Slack webhook
    default_assignee_id       bigint
);

-- Revocation endpoints: per key, or the org default (key_id NULL).
CREATE TABLE revocation_endpoints (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key_id      bigint REFERENCES keys (id) ON DELETE CASCADE,
    url         text NOT NULL CHECK (url ~ '^https?://'),
    hmac_secret text NOT NULL DEFAULT '',   -- "whsec_…"; empty: Ed25519 signature only
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX revocation_endpoints_org_default ON revocation_endpoints (org_id) WHERE key_id IS NULL;
CREATE UNIQUE INDEX revocation_endpoints_key ON revocation_endpoints (key_id) WHERE key_id IS NOT NULL;

-- Outgoing webhook deliveries (shared by revocation and event webhooks): one
-- row per message, with a stable id reused on every retry.
CREATE TABLE webhook_deliveries (
    id           bigserial PRIMARY KEY,
    message_id   text NOT NULL UNIQUE,      -- the webhook-id header
    kind         text NOT NULL,             -- "revocation", …
    incident_id  bigint REFERENCES incidents (id) ON DELETE CASCADE,
    endpoint_id  bigint,
    url          text NOT NULL,
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    finished_at  timestamptz
);
CREATE INDEX webhook_deliveries_incident_idx ON webhook_deliveries (incident_id);

CREATE TABLE webhook_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL,
    status_code  integer NOT NULL DEFAULT 0,   -- 0: no response
    latency_ms   integer NOT NULL DEFAULT 0,
    error        text NOT NULL DEFAULT '',
    response     text NOT NULL DEFAULT ''      -- excerpt of the body
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

-- Leakwatch's Ed25519 webhook signing keys, used when none is configured
-- (LEAKWATCH_WEBHOOK_SIGNING_KEY): generated once, shared by all replicas.
-- The newest unretired key signs; all unretired keys are published.
CREATE TABLE webhook_signing_keys (
    id          text PRIMARY KEY,
    private_key text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
