-- Asterisk's own call records, imported from Master.csv / queue_log (followed like
-- `tail -F`) or from a cdr_pgsql `cdr` table. Every source row is kept once (by a
-- hash of its content), grouped into calls by linkedid and linked to the `calls` row
-- our AGI flows wrote (calls.call_uid = linkedid or calls.linkedid = linkedid), so a
-- call is never counted twice.

CREATE TABLE cdr_records (
    id           bigserial PRIMARY KEY,
    row_hash     text NOT NULL UNIQUE,
    origin       text NOT NULL,          -- file path or 'table:<name>'
    accountcode  text,
    src          text,
    dst          text,
    dcontext     text,
    clid         text,
    channel      text,
    dstchannel   text,
    lastapp      text,
    lastdata     text,
    start_at     timestamptz,
    answer_at    timestamptz,
    end_at       timestamptz,
    duration     integer,
    billsec      integer,
    disposition  text,
    amaflags     text,
    uniqueid     text,
    userfield    text,
    peeraccount  text,
    linkedid     text,
    sequence     integer,
    call_id      bigint REFERENCES calls (id),
    imported_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cdr_records_linkedid_idx ON cdr_records (linkedid);
CREATE INDEX cdr_records_uniqueid_idx ON cdr_records (uniqueid);

CREATE TABLE queue_log_events (
    id           bigserial PRIMARY KEY,
    row_hash     text NOT NULL UNIQUE,
    origin       text NOT NULL,
    at           timestamptz NOT NULL,
    callid       text NOT NULL,
    queuename    text,
    agent        text,
    event        text NOT NULL,
    data         text[] NOT NULL DEFAULT '{}',
    call_id      bigint REFERENCES calls (id),
    imported_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_log_events_callid_idx ON queue_log_events (callid);

-- Where each followed file was read up to (committed with the rows it produced).
CREATE TABLE ingest_file_offsets (
    path        text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('cdr_csv', 'queue_log')),
    inode       bigint,
    "offset"    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
