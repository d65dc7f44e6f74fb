-- Every node keeps a copy of the blocklist (hotline/calls/blocklist.py) so a citizen's
-- call costs no look-up in it; any change to the table tells them all to reload
-- (one notice per statement, delivered at commit).
CREATE FUNCTION blocklist_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hotline_events', '{"topic": "blocklist.changed", "payload": {}}');
    RETURN NULL;
END;
$$;

CREATE TRIGGER blocklist_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON blocklist
    FOR EACH STATEMENT EXECUTE FUNCTION blocklist_changed();
