-- Dashboard (issue 16): live updates and the queue's filters.
--
-- Every change a team watches (a new incident, phase, acknowledgement,
-- assignment, severity, escalation, containment, a new sighting, a note) is
-- announced with NOTIFY on one channel, from triggers, so no writer can
-- forget it (the workflow, the crawler's recorder, the SLA sweep, Slack
-- clicks, the CLI). PostgreSQL delivers notifications at commit, and only
-- then: a rolled-back change is never announced. The payload is small JSON
-- (ids and what changed, never a secret or a URL); each web process holds
-- one LISTEN connection and fans the notifications out to its subscribers
-- (incidents.Changes).
CREATE FUNCTION leakwatch_incident_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    what text[] := '{}';
BEGIN
    IF TG_OP = 'INSERT' THEN
        what := ARRAY['new'];
    ELSE
        IF NEW.phase IS DISTINCT FROM OLD.phase THEN what := what || 'phase'::text; END IF;
        IF NEW.acknowledged_at IS DISTINCT FROM OLD.acknowledged_at THEN what := what || 'acknowledged'::text; END IF;
        IF NEW.assignee_id IS DISTINCT FROM OLD.assignee_id THEN what := what || 'assignee'::text; END IF;
        IF NEW.severity IS DISTINCT FROM OLD.severity THEN what := what || 'severity'::text; END IF;
        IF NEW.escalated_at IS DISTINCT FROM OLD.escalated_at THEN what := what || 'escalated'::text; END IF;
        IF NEW.containment IS DISTINCT FROM OLD.containment THEN what := what || 'containment'::text; END IF;
        -- notified_at, reminded_at, last_seen_at alone: nothing the page shows
        -- changed (a sighting is announced by the occurrences trigger).
        IF cardinality(what) = 0 THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM pg_notify('leakwatch_incidents',
        json_build_object('org_id', NEW.org_id, 'incident_id', NEW.id, 'what', what)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER incidents_notify AFTER INSERT OR UPDATE ON incidents
    FOR EACH ROW EXECUTE FUNCTION leakwatch_incident_notify();

CREATE FUNCTION leakwatch_occurrence_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('leakwatch_incidents', json_build_object(
        'org_id', (SELECT org_id FROM incidents WHERE id = NEW.incident_id),
        'incident_id', NEW.incident_id, 'what', ARRAY['sighting'])::text);
    RETURN NULL;
END $$;

CREATE TRIGGER occurrences_notify AFTER INSERT ON occurrences
    FOR EACH ROW EXECUTE FUNCTION leakwatch_occurrence_notify();

CREATE FUNCTION leakwatch_note_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('leakwatch_incidents', json_build_object(
        'org_id', (SELECT org_id FROM incidents WHERE id = NEW.incident_id),
        'incident_id', NEW.incident_id, 'what', ARRAY['note'])::text);
    RETURN NULL;
END $$;

CREATE TRIGGER incident_events_note_notify AFTER INSERT ON incident_events
    FOR EACH ROW WHEN (NEW.kind = 'note') EXECUTE FUNCTION leakwatch_note_notify();

-- The queue's sorts and filters, each keyset-paginated within the
-- organisation.
CREATE INDEX incidents_org_last_seen_idx ON incidents (org_id, last_seen_at DESC, id DESC);
CREATE INDEX incidents_org_open_idx ON incidents (org_id, id DESC) WHERE state = 'open';
CREATE INDEX occurrences_incident_source_idx ON occurrences (incident_id, source);
