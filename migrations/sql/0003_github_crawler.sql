-- GitHub crawler at full fidelity: feed health, recorded gaps, per-org
-- watched feeds, token budgets and content de-duplication.

-- Per-feed health, kept up to date by the poller.
ALTER TABLE crawl_feeds
    ADD COLUMN path          text NOT NULL DEFAULT '',
    ADD COLUMN events_total  bigint NOT NULL DEFAULT 0,
    ADD COLUMN gaps_total    bigint NOT NULL DEFAULT 0,
    ADD COLUMN missed_total  bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_event_at timestamptz,
    -- created_at of the newest event → when the poll fetched it.
    ADD COLUMN last_lag_ms   bigint;

-- One row per poll that brought events, for events/min and lag over the
-- last hour; the poller prunes older rows.
CREATE TABLE crawl_feed_polls (
    feed      text NOT NULL,
    polled_at timestamptz NOT NULL DEFAULT now(),
    events    integer NOT NULL,
    lag_ms    bigint
);
CREATE INDEX crawl_feed_polls_idx ON crawl_feed_polls (feed, polled_at);

-- A gap: a poll whose pages shared no event with the previous poll, so
-- events between the two were never seen. estimated_missed is an upper
-- bound from the event ids on either side.
CREATE TABLE crawl_gaps (
    id               bigserial PRIMARY KEY,
    feed             text NOT NULL,
    detected_at      timestamptz NOT NULL DEFAULT now(),
    after_event_id   bigint NOT NULL,
    before_event_id  bigint NOT NULL,
    estimated_missed bigint NOT NULL CHECK (estimated_missed >= 0)
);
CREATE INDEX crawl_gaps_feed_idx ON crawl_gaps (feed, detected_at DESC);

-- Extra feeds an organisation watches closely: its GitHub organisation,
-- its people, or single repositories.
CREATE TABLE github_watches (
    id         bigserial PRIMARY KEY,
    org_id     bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('org', 'user', 'repo')),
    target     text NOT NULL CHECK (target ~ '^[A-Za-z0-9_.-]{1,100}(/[A-Za-z0-9_.-]{1,100})?$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, kind, target)
);

-- Rate budget of each GitHub token as the crawler last saw it. token_id is
-- a short hash of the token, never the token.
CREATE TABLE github_token_budgets (
    token_id       text PRIMARY KEY,
    limit_per_hour integer NOT NULL,
    remaining      integer NOT NULL,
    reset_at       timestamptz,
    parked_until   timestamptz,
    park_reason    text NOT NULL DEFAULT '',
    requests       bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Recently scanned content by hash (a patch pushed to many forks is
-- scanned once): matches holds the matcher's findings in that content, so
-- each new location is still recorded. keyset_at is when the key set used
-- was loaded: a row older than the newest key is not trusted. Bounded: rows
-- older than the retention are pruned.
CREATE TABLE crawl_content (
    hash       bytea PRIMARY KEY,
    matches    jsonb NOT NULL,
    keyset_at  timestamptz NOT NULL,
    scanned_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crawl_content_scanned_idx ON crawl_content (scanned_at);
