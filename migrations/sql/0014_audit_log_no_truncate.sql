-- The audit log refused UPDATE and DELETE row by row, but TRUNCATE fires no
-- row triggers and emptied it at once. A statement-level trigger refuses it
-- too (PostgreSQL: "TRUNCATE ... does not fire ON DELETE triggers").
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
