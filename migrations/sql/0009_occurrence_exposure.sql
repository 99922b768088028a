-- How widely each sighting was exposed, for severity: whether the text was
-- publicly readable (an organisation's event feed can carry private
-- repositories' events) and its audience where known (stars plus forks of
-- the repository; NULL when unknown).
ALTER TABLE occurrences
    ADD COLUMN private boolean NOT NULL DEFAULT false,
    ADD COLUMN reach   integer;
