-- One reply reaches every caller (国办函〔2025〕66号): when a ticket closes after handling,
-- the callers of the tickets merged into it get the result too (each on its own number,
-- naming their own ticket number).
CREATE OR REPLACE FUNCTION notifications_ticket_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'closed' AND OLD.state <> 'closed' AND NEW.close_kind = 'completed' THEN
        INSERT INTO notifications (kind, ticket_id, recipient, payload, dedupe_key, created_at, next_attempt_at)
        SELECT 'result', t.id, coalesce(nullif(t.contact_number, ''), t.caller_number),
               jsonb_build_object('number', t.number, 'closed_at', NEW.closed_at,
                                  'unit_name', (SELECT name FROM units WHERE code = NEW.lead_unit_code)),
               'result:' || t.id || ':' || NEW.id || ':' || NEW.reopen_count, now(), now()
          FROM tickets t
         WHERE (t.id = NEW.id OR t.master_id = NEW.id)
           AND length(coalesce(nullif(t.contact_number, ''), t.caller_number)) >= 7
        ON CONFLICT (dedupe_key) DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
