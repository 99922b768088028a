-- Secrets a key was rotated away from stay matchable for a while (issue 13):
-- a sighting of one is recorded on the key's last incident, flagged here,
-- with no alert. The registry reads the recently replaced fingerprints
-- through the partial index.
ALTER TABLE occurrences ADD COLUMN after_rotation boolean NOT NULL DEFAULT false;
CREATE INDEX key_fingerprints_replaced_idx ON key_fingerprints (replaced_at) WHERE replaced_at IS NOT NULL;

-- Push-fetch coverage (issue 13): per hour of push events, the distinct
-- pushes queued and those fetched. Each push costs at least one request of
-- a token's 5,000 an hour; when the tokens cannot cover every push this
-- says how much of the pushed code was read. Counts only, no event data.
CREATE TABLE github_push_coverage (
    hour    timestamptz PRIMARY KEY,
    seen    bigint NOT NULL DEFAULT 0,
    fetched bigint NOT NULL DEFAULT 0
);
