-- Readable ticket numbers (工单流水号), e.g. ZS2612010001: a configurable prefix, the
-- local creation day (yymmdd) and a daily sequence. Assigned by the database on every
-- insert (whatever path creates the ticket), unique, never changed and never reused:
-- each day counts on its own PostgreSQL sequence, and nextval() is not rolled back,
-- so a number handed to a transaction that later rolls back (or to a ticket later
-- deleted) is never handed out again.

CREATE TABLE ticket_numbering (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    prefix    text NOT NULL DEFAULT 'ZS' CHECK (prefix ~ '^[A-Z]{1,8}$'),
    digits    integer NOT NULL DEFAULT 4 CHECK (digits BETWEEN 3 AND 8),
    timezone  text NOT NULL DEFAULT 'Asia/Shanghai',
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ticket_numbering DEFAULT VALUES;

-- The day's sequence, created when missing (hotline.numbering prepares today's and the
-- next days' ahead, so that the creating transaction is not a ticket's: a sequence
-- created inside a ticket's transaction disappears if that transaction rolls back).
CREATE FUNCTION ticket_number_sequence(p_day date) RETURNS regclass LANGUAGE plpgsql AS $$
DECLARE
    name text := 'ticket_no_' || to_char(p_day, 'YYYYMMDD');
    rel regclass := to_regclass(name);
BEGIN
    IF rel IS NULL THEN
        -- two transactions creating the same day's sequence queue here
        PERFORM pg_advisory_xact_lock(73451268, p_day - date '2000-01-01');
        rel := to_regclass(name);
        IF rel IS NULL THEN
            EXECUTE format('CREATE SEQUENCE %I', name);
            rel := to_regclass(name);
        END IF;
    END IF;
    RETURN rel;
END $$;

CREATE FUNCTION ticket_number_next(p_at timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    cfg ticket_numbering;
    day date;
    n bigint;
BEGIN
    SELECT * INTO cfg FROM ticket_numbering;
    day := (coalesce(p_at, now()) AT TIME ZONE cfg.timezone)::date;
    n := nextval(ticket_number_sequence(day));
    RETURN cfg.prefix || to_char(day, 'YYMMDD') || lpad(n::text, greatest(cfg.digits, length(n::text)), '0');
END $$;

ALTER TABLE tickets ADD COLUMN number text;

-- existing tickets, in creation order
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT id, created_at FROM tickets ORDER BY created_at, id LOOP
        UPDATE tickets SET number = ticket_number_next(r.created_at) WHERE id = r.id;
    END LOOP;
END $$;

ALTER TABLE tickets ALTER COLUMN number SET NOT NULL;
CREATE UNIQUE INDEX tickets_number_idx ON tickets (number);

CREATE FUNCTION ticket_number_assign() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.number := ticket_number_next(NEW.created_at);
    ELSIF NEW.number IS DISTINCT FROM OLD.number THEN
        RAISE EXCEPTION 'a ticket number never changes (ticket %)', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tickets_number_assign BEFORE INSERT OR UPDATE OF number ON tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_number_assign();
