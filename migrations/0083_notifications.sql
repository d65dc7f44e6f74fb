-- The notifications outbox (短信通知): an acceptance receipt with the ticket number when a
-- ticket is created, the result when it closes after handling, reminders to the handling
-- unit before a deadline (written by the notify jobs). Rows are written IN THE SAME
-- TRANSACTION as the change they announce (the triggers below), so a notification exists
-- exactly when its change committed; hotline.notify delivers them through the configured
-- HTTP gateway, retries with backoff, and keeps the ones the gateway refuses too often as
-- dead letters with the reason (status 'dead'), listed to supervisors.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('receipt', 'reminder', 'result')),
    ticket_id       bigint REFERENCES tickets (id),
    recipient       text NOT NULL,                 -- a normalised phone number
    payload         jsonb NOT NULL DEFAULT '{}',   -- the facts the text is rendered from
    dedupe_key      text NOT NULL UNIQUE,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,    -- refusals by the gateway
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    dead_at         timestamptz
);
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX notifications_status_idx ON notifications (status, id);
CREATE INDEX notifications_ticket_idx ON notifications (ticket_id);

CREATE FUNCTION notifications_ticket_created() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    recipient text := coalesce(nullif(NEW.contact_number, ''), NEW.caller_number);
BEGIN
    IF length(recipient) >= 7 THEN
        INSERT INTO notifications (kind, ticket_id, recipient, payload, dedupe_key, created_at, next_attempt_at)
        VALUES ('receipt', NEW.id, recipient,
                jsonb_build_object('number', NEW.number, 'created_at', NEW.created_at),
                'receipt:' || NEW.id, now(), now())
        ON CONFLICT (dedupe_key) DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tickets_notify_created AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION notifications_ticket_created();

-- the result, once per closing after handling (a reopened ticket that closes again sends again)
CREATE FUNCTION notifications_ticket_closed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    recipient text := coalesce(nullif(NEW.contact_number, ''), NEW.caller_number);
BEGIN
    IF NEW.state = 'closed' AND OLD.state <> 'closed' AND NEW.close_kind = 'completed' AND length(recipient) >= 7 THEN
        INSERT INTO notifications (kind, ticket_id, recipient, payload, dedupe_key, created_at, next_attempt_at)
        VALUES ('result', NEW.id, recipient,
                jsonb_build_object('number', NEW.number, 'closed_at', NEW.closed_at,
                                   'unit_name', (SELECT name FROM units WHERE code = NEW.lead_unit_code)),
                'result:' || NEW.id || ':' || NEW.reopen_count, now(), now())
        ON CONFLICT (dedupe_key) DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tickets_notify_closed AFTER UPDATE OF state ON tickets
    FOR EACH ROW EXECUTE FUNCTION notifications_ticket_closed();
