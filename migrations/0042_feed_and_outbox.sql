-- The change log behind the real-time feed and the upstream outbox.
--
-- Statement-level triggers on calls, the sub-centre tables and (when it exists)
-- tickets write one row per changed record IN THE SAME TRANSACTION as the change,
-- with a snapshot of the row. Readers only take rows of transactions older than the
-- oldest transaction still in progress (pg_snapshot_xmin), ordered by (txid, id): a
-- row that becomes visible later always sorts after everything already delivered,
-- so a cursor (txid, id) never skips a late commit and never repeats a row.

CREATE TABLE change_log (
    id         bigserial,
    txid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    entity     text NOT NULL,
    entity_id  bigint NOT NULL,
    op         text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    data       jsonb NOT NULL,
    PRIMARY KEY (txid, id)
);
CREATE INDEX change_log_at_idx ON change_log (at);

-- Everything up to this cursor was pruned: an older cursor cannot be resumed.
CREATE TABLE change_log_horizon (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    txid        xid8 NOT NULL DEFAULT '0',
    change_id   bigint NOT NULL DEFAULT 0,
    pruned_at   timestamptz
);
INSERT INTO change_log_horizon DEFAULT VALUES;

CREATE FUNCTION feed_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    captured bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO change_log (entity, entity_id, op, data)
        SELECT TG_ARGV[0], (j ->> 'id')::bigint, 'insert', j
          FROM (SELECT to_jsonb(n) AS j FROM new_rows n) s;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO change_log (entity, entity_id, op, data)
        SELECT TG_ARGV[0], (nj ->> 'id')::bigint, 'update', nj
          FROM (SELECT to_jsonb(n) AS nj FROM new_rows n) s
         WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE to_jsonb(o) = s.nj);
    ELSE
        INSERT INTO change_log (entity, entity_id, op, data)
        SELECT TG_ARGV[0], (j ->> 'id')::bigint, 'delete', jsonb_build_object('id', j -> 'id')
          FROM (SELECT to_jsonb(o) AS j FROM old_rows o) s;
    END IF;
    GET DIAGNOSTICS captured = ROW_COUNT;
    IF captured > 0 THEN
        -- a wake-up hint for feed readers on every node (delivered at commit, once per
        -- transaction because identical notifications are folded)
        PERFORM pg_notify('hotline_events', '{"topic": "feed.changed", "payload": {}}');
    END IF;
    RETURN NULL;
END $$;

-- Attach the capture triggers to a table with a bigint `id` column (idempotent).
-- Returns false, doing nothing, when the table or its id column does not exist.
CREATE FUNCTION feed_attach(table_name text, entity text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    rel regclass := to_regclass(table_name);
BEGIN
    IF rel IS NULL OR NOT EXISTS (
        SELECT 1 FROM pg_attribute
         WHERE attrelid = rel AND attname = 'id' AND NOT attisdropped
           AND atttypid IN ('bigint'::regtype, 'integer'::regtype)) THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS feed_capture_ins ON %s', rel);
    EXECUTE format('DROP TRIGGER IF EXISTS feed_capture_upd ON %s', rel);
    EXECUTE format('DROP TRIGGER IF EXISTS feed_capture_del ON %s', rel);
    EXECUTE format('CREATE TRIGGER feed_capture_ins AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION feed_capture(%L)', rel, entity);
    EXECUTE format('CREATE TRIGGER feed_capture_upd AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION feed_capture(%L)', rel, entity);
    EXECUTE format('CREATE TRIGGER feed_capture_del AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION feed_capture(%L)', rel, entity);
    RETURN true;
END $$;

SELECT feed_attach('calls', 'call');
SELECT feed_attach('subcenter_calls', 'subcenter_call');
SELECT feed_attach('subcenter_tickets', 'subcenter_ticket');
-- the tickets engineer's table (migrations 002x), when present; `hotline ingest
-- attach-feed` and the feed service attach it later otherwise
SELECT feed_attach('tickets', 'ticket');

-- The upstream worker's position in the change log (the outbox cursor) and its state.
CREATE TABLE upstream_state (
    id               boolean PRIMARY KEY DEFAULT true CHECK (id),
    cursor_txid      xid8 NOT NULL DEFAULT '0',
    cursor_id        bigint NOT NULL DEFAULT 0,
    head_change_id   bigint,          -- the change being retried
    head_attempts    integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_error       text,
    last_attempt_at  timestamptz,
    last_success_at  timestamptz,
    sent_total       bigint NOT NULL DEFAULT 0,
    dead_total       bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO upstream_state DEFAULT VALUES;

CREATE TABLE upstream_dead_letters (
    id           bigserial PRIMARY KEY,
    change_id    bigint NOT NULL,
    change_txid  xid8 NOT NULL,
    entity       text NOT NULL,
    entity_id    bigint NOT NULL,
    op           text NOT NULL,
    data         jsonb NOT NULL,
    changed_at   timestamptz NOT NULL,
    attempts     integer NOT NULL,
    last_error   text NOT NULL,
    status       text NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'requeued', 'sent', 'discarded')),
    dead_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz
);
CREATE INDEX upstream_dead_letters_status_idx ON upstream_dead_letters (status, id);

CREATE TABLE quality_reports (
    source        text NOT NULL,
    day           date NOT NULL,
    generated_at  timestamptz NOT NULL DEFAULT now(),
    report        jsonb NOT NULL,
    PRIMARY KEY (source, day)
);
