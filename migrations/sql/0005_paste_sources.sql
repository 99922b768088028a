-- Paste crawler (crawler/paste): one row per configured source with its
-- checkpoint and health counters, and one row per paste seen (dedup by source
-- and paste key). Dedup by content hash is the shared pipeline's
-- (crawl_content). No paste text is ever stored.

CREATE TABLE paste_sources (
    name                 text PRIMARY KEY,
    kind                 text NOT NULL,
    poll_interval_s      integer NOT NULL DEFAULT 60,
    -- checkpoint: the newest paste seen (key and date)
    last_key             text NOT NULL DEFAULT '',
    last_paste_at        timestamptz,
    -- health
    last_poll_at         timestamptz,
    last_success_at      timestamptz,
    last_error           text NOT NULL DEFAULT '',
    last_error_at        timestamptz,
    unauthorised         boolean NOT NULL DEFAULT false,
    consecutive_failures integer NOT NULL DEFAULT 0,
    listed_total         bigint NOT NULL DEFAULT 0,
    fetch_errors_total   bigint NOT NULL DEFAULT 0,
    last_fetch_error_at  timestamptz,
    deleted_total        bigint NOT NULL DEFAULT 0,
    skipped_total        bigint NOT NULL DEFAULT 0,
    last_skip_at         timestamptz,
    gaps_total           bigint NOT NULL DEFAULT 0,
    gap_estimate_total   bigint NOT NULL DEFAULT 0,
    last_gap_at          timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE paste_items (
    source         text NOT NULL REFERENCES paste_sources (name) ON DELETE CASCADE,
    key            text NOT NULL,
    paste_at       timestamptz,
    listed_at      timestamptz NOT NULL DEFAULT now(),
    status         text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'scanned', 'deleted', 'skipped', 'failed')),
    parts          integer NOT NULL DEFAULT 0, -- texts (a gist's files)
    findings       integer NOT NULL DEFAULT 0,
    detail         text NOT NULL DEFAULT '',
    done_at        timestamptz,
    PRIMARY KEY (source, key)
);

CREATE INDEX paste_items_done ON paste_items (source, done_at);
