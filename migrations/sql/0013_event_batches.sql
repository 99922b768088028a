-- Payloads of polled GitHub events waiting for their scan job. The events
-- feed cannot be read again, so the poller keeps each batch here, in the
-- transaction that queues its job, and the job deletes the row in the
-- transaction that completes it: River keeps finished jobs (and their
-- arguments) for a day, and leaked text must not outlive its scan.
CREATE TABLE github_event_batches (
    id         bigserial PRIMARY KEY,
    feed       text        NOT NULL,
    events     json        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Jobs queued before batches existed carried the payloads in their
-- arguments; finished ones are kept by River for a day. Drop their text now.
UPDATE river_job SET args = args - 'events'
WHERE kind = 'github_events' AND state IN ('completed', 'cancelled', 'discarded') AND args ? 'events';
