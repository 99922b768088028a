-- A counter of changes to the key set, bumped in the same transaction as
-- every change to keys. The content-dedup cache trusts a remembered scan only
-- if it was made with the current version. Timestamps could not say that: a
-- key's created_at is its transaction's start (it may commit after a
-- snapshot stamped later), application and database clocks differ, and a
-- rotation changes the fingerprint without a new created_at.
CREATE TABLE keyset_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);
INSERT INTO keyset_version (singleton, version) VALUES (true, 1);

CREATE FUNCTION keys_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE keyset_version SET version = version + 1;
    RETURN NULL;
END;
$$;
CREATE TRIGGER keys_bump_version AFTER INSERT OR UPDATE OR DELETE ON keys
    FOR EACH STATEMENT EXECUTE FUNCTION keys_bump_version();

-- Remembered scans made before this migration cannot be placed: forget them.
DELETE FROM crawl_content;
ALTER TABLE crawl_content DROP COLUMN keyset_at;
ALTER TABLE crawl_content ADD COLUMN keyset_version bigint NOT NULL;
