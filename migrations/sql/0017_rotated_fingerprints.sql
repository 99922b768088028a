-- Secrets a key was rotated away from stay matchable for a while (issue 13):
-- a sighting of one is recorded on the key's last incident, flagged here,
-- with no alert. The registry reads the recently replaced fingerprints
-- through the partial index.
ALTER TABLE occurrences ADD COLUMN after_rotation boolean NOT NULL DEFAULT false;
CREATE INDEX key_fingerprints_replaced_idx ON key_fingerprints (replaced_at) WHERE replaced_at IS NOT NULL;
