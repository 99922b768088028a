-- Backfill of recorded gaps from GH Archive, and live coverage measured
-- against it. Storage stays O(gaps + hours): gaps keep their id range and
-- counts, never the ids of the events found.

-- How each gap ended: 'open' while its hours are read, then 'backfilled'
-- (archive_found events of the gap were in the archive, archive_processed
-- went through the pipeline) or 'unrecoverable' (note says why: an hour
-- file never published, a gap longer than the archive walk, a feed GH
-- Archive does not hold). hour_lo..hour_hi are the hours read so far; they
-- widen while the archive shows the gap goes on.
ALTER TABLE crawl_gaps
    ADD COLUMN state             text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'backfilled', 'unrecoverable')),
    ADD COLUMN hour_lo           timestamptz,
    ADD COLUMN hour_hi           timestamptz,
    ADD COLUMN archive_found     bigint NOT NULL DEFAULT 0,
    ADD COLUMN archive_processed bigint NOT NULL DEFAULT 0,
    ADD COLUMN resolved_at       timestamptz,
    ADD COLUMN note              text NOT NULL DEFAULT '';
CREATE INDEX crawl_gaps_open_idx ON crawl_gaps (id) WHERE state = 'open';

-- One row per GH Archive hour file read (or waited for). line_offset is how
-- far the hour's own count has got (resumable: jobs stop after a time budget
-- and continue from here); events is the archive's event count for the
-- hour once state is 'done'; skipped counts malformed or oversized lines.
CREATE TABLE gharchive_hours (
    hour        timestamptz PRIMARY KEY,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'missing')),
    line_offset bigint NOT NULL DEFAULT 0,
    events      bigint NOT NULL DEFAULT 0,
    skipped     bigint NOT NULL DEFAULT 0,
    min_id      bigint,
    max_id      bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz
);

-- Which gap needs which hour, and how far that gap's pass over the hour
-- has got (a gap attached to an hour already being read starts where it
-- is attached, so no line is counted twice for it).
CREATE TABLE crawl_gap_hours (
    gap_id      bigint NOT NULL REFERENCES crawl_gaps (id) ON DELETE CASCADE,
    hour        timestamptz NOT NULL,
    line_offset bigint NOT NULL DEFAULT 0,
    done        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (gap_id, hour)
);
CREATE INDEX crawl_gap_hours_open_idx ON crawl_gap_hours (hour) WHERE NOT done;

-- Events taken live per feed and hour of their created_at, counted in the
-- poll's transaction: the numerator of live coverage.
CREATE TABLE crawl_live_hours (
    feed   text NOT NULL,
    hour   timestamptz NOT NULL,
    events bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (feed, hour)
);

-- How a sighting was found: 'live' (the poller) or 'archive' (a gap
-- backfilled from GH Archive, usually hours late).
ALTER TABLE occurrences
    ADD COLUMN via text NOT NULL DEFAULT 'live' CHECK (via IN ('live', 'archive'));
