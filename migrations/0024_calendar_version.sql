-- A version number bumped by every change to the calendar, so that nodes can keep
-- the calendar in memory and reload it only when it changed.
CREATE TABLE calendar_version (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO calendar_version (id, version) VALUES (1, 1);

CREATE FUNCTION calendar_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE calendar_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER calendar_days_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calendar_days
    FOR EACH STATEMENT EXECUTE FUNCTION calendar_bump_version();
CREATE TRIGGER calendar_hours_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calendar_hours
    FOR EACH STATEMENT EXECUTE FUNCTION calendar_bump_version();
