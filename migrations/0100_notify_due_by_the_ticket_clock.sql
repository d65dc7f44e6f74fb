-- A receipt or a result is due from the moment its ticket says it was created or
-- closed (the node's clock, which the application sets), never later than the
-- database's now(): a node whose clock is behind the database's (or a test's injected
-- clock in the past) no longer sees its fresh notifications as not yet due.
CREATE OR REPLACE FUNCTION notifications_ticket_created() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    recipient text := coalesce(nullif(NEW.contact_number, ''), NEW.caller_number);
BEGIN
    IF length(recipient) >= 7 THEN
        INSERT INTO notifications (kind, ticket_id, recipient, payload, dedupe_key, created_at, next_attempt_at)
        VALUES ('receipt', NEW.id, recipient,
                jsonb_build_object('number', NEW.number, 'created_at', NEW.created_at),
                'receipt:' || NEW.id, now(), least(now(), coalesce(NEW.created_at, now())))
        ON CONFLICT (dedupe_key) DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION notifications_ticket_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'closed' AND OLD.state <> 'closed' AND NEW.close_kind = 'completed' THEN
        INSERT INTO notifications (kind, ticket_id, recipient, payload, dedupe_key, created_at, next_attempt_at)
        SELECT 'result', t.id, coalesce(nullif(t.contact_number, ''), t.caller_number),
               jsonb_build_object('number', t.number, 'closed_at', NEW.closed_at,
                                  'unit_name', (SELECT name FROM units WHERE code = NEW.lead_unit_code)),
               'result:' || t.id || ':' || NEW.id || ':' || NEW.reopen_count, now(),
               least(now(), coalesce(NEW.closed_at, now()))
          FROM tickets t
         WHERE (t.id = NEW.id OR t.master_id = NEW.id)
           AND length(coalesce(nullif(t.contact_number, ''), t.caller_number)) >= 7
        ON CONFLICT (dedupe_key) DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
