-- Organisations are the tenants. The Slack incoming-webhook URL is the
-- walking skeleton's only notification channel.
CREATE TABLE orgs (
    id                bigserial PRIMARY KEY,
    name              text NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 200),
    slack_webhook_url text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Keys are registered secrets, known only by their fingerprint.
CREATE TABLE keys (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name <> '' AND length(name) <= 200),
    fingerprint text NOT NULL,
    provider    text NOT NULL DEFAULT '',
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'revoked', 'retired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name),
    UNIQUE (org_id, fingerprint)
);
CREATE INDEX keys_fingerprint_idx ON keys (fingerprint);

-- Every change to keys wakes the matchers of all worker processes, which
-- reload their immutable sets.
CREATE FUNCTION keys_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('leakwatch_keys', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER keys_notify AFTER INSERT OR UPDATE OR DELETE ON keys
    FOR EACH STATEMENT EXECUTE FUNCTION keys_notify();

-- Incidents: one per exposure of a key. While an incident is open, further
-- findings of the same key are occurrences of it.
CREATE TABLE incidents (
    id               bigserial PRIMARY KEY,
    org_id           bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key_id           bigint NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    state            text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    first_seen_at    timestamptz NOT NULL,
    last_seen_at     timestamptz NOT NULL,
    source_url       text NOT NULL DEFAULT '',
    notified_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX incidents_one_open_per_key ON incidents (key_id) WHERE state = 'open';
CREATE INDEX incidents_org_idx ON incidents (org_id, id DESC);

-- Occurrences are where a key was seen. dedup_key makes recording the same
-- sighting twice (a retried job, a re-polled event) a no-op.
CREATE TABLE occurrences (
    id           bigserial PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    key_id       bigint NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    dedup_key    text NOT NULL,
    source       text NOT NULL,
    event_id     text NOT NULL DEFAULT '',
    event_type   text NOT NULL DEFAULT '',
    url          text NOT NULL DEFAULT '',
    repo         text NOT NULL DEFAULT '',
    commit_sha   text NOT NULL DEFAULT '',
    path         text NOT NULL DEFAULT '',
    line         integer NOT NULL DEFAULT 0,
    col          integer NOT NULL DEFAULT 0,
    encoding     text NOT NULL DEFAULT '',
    actor        text NOT NULL DEFAULT '',
    preview      text NOT NULL DEFAULT '',
    event_at     timestamptz,
    detected_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (key_id, dedup_key)
);
CREATE INDEX occurrences_incident_idx ON occurrences (incident_id, id);

-- Crawler checkpoints: one row per feed.
CREATE TABLE crawl_feeds (
    name            text PRIMARY KEY,
    last_event_id   bigint NOT NULL DEFAULT 0,
    etag            text NOT NULL DEFAULT '',
    poll_interval_s integer NOT NULL DEFAULT 60,
    next_poll_at    timestamptz NOT NULL DEFAULT now(),
    last_success_at timestamptz,
    last_error      text NOT NULL DEFAULT '',
    last_error_at   timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
