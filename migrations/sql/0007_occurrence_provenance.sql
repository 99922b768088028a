-- Provenance the crawlers know but occurrences did not keep: the title of the
-- paste, gist, issue or pull request a secret was seen in (attacker-controlled
-- text: escaped wherever it is shown), and when the text was fetched, so
-- detection lag splits into source lag (event -> fetch) and our own
-- (fetch -> match).
ALTER TABLE occurrences
    ADD COLUMN title      text NOT NULL DEFAULT '',
    ADD COLUMN fetched_at timestamptz;
