-- Signed sub-centre ingest: the sources (sub-centres, PBXs), every signed request
-- (for replay detection and a stored answer), the records in their latest version,
-- one receipt per record received (for data-quality reports), and the quarantine
-- of records that failed validation, with every reason.
-- Source keys are secrets and never stored here: only a fingerprint (see docs/INGEST.md).

CREATE TABLE ingest_sources (
    code             text PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name             text NOT NULL,
    -- lines this source may report on (empty: any line of the registry)
    hotline_numbers  text[] NOT NULL DEFAULT '{}',
    -- first 16 hex digits of sha256(key): tells a stale key file from the current key
    key_fingerprint  text,
    key_rotated_at   timestamptz,
    -- signed requests per minute (token bucket per node), and records per batch
    rate_per_minute  integer NOT NULL DEFAULT 600 CHECK (rate_per_minute > 0),
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per signed request that reached the merge (committed with it). A request
-- sent again with the same signature inside the replay window gets the stored answer.
CREATE TABLE ingest_batches (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL REFERENCES ingest_sources (code),
    kind         text NOT NULL CHECK (kind IN ('calls', 'tickets')),
    signature    text NOT NULL,
    signed_at    timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    format       text NOT NULL CHECK (format IN ('json', 'csv', 'reprocess')),
    records      integer NOT NULL,
    accepted     integer NOT NULL,
    updated      integer NOT NULL,
    duplicate    integer NOT NULL,
    rejected     integer NOT NULL,
    response     jsonb NOT NULL,
    UNIQUE (source, signature)
);
CREATE INDEX ingest_batches_received_idx ON ingest_batches (source, received_at);

-- Exact replays of an already answered request (same signature).
CREATE TABLE ingest_replays (
    id        bigserial PRIMARY KEY,
    source    text NOT NULL REFERENCES ingest_sources (code),
    batch_id  bigint NOT NULL REFERENCES ingest_batches (id),
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_replays_at_idx ON ingest_replays (source, at);

-- Sub-centre call records, latest version per (source, source_id).
CREATE TABLE subcenter_calls (
    id                 bigserial PRIMARY KEY,
    source             text NOT NULL REFERENCES ingest_sources (code),
    source_id          text NOT NULL,
    version            bigint NOT NULL CHECK (version >= 1),
    seq                bigint,
    hotline_number     text NOT NULL,
    caller_number      text NOT NULL DEFAULT '',
    state              text,
    started_at         timestamptz NOT NULL,
    answered_at        timestamptz,
    ended_at           timestamptz,
    wait_seconds       numeric(10, 3),
    talk_seconds       numeric(10, 3),
    agent              text,
    region             text,
    unit_code          text,
    transfer_call_uid  text,      -- our calls.call_uid when 12345 transferred the call
    ticket_source_id   text,
    data               jsonb NOT NULL,  -- the record as accepted, extra fields included
    batch_id           bigint,
    first_received_at  timestamptz NOT NULL DEFAULT now(),
    received_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id)
);
CREATE INDEX subcenter_calls_started_idx ON subcenter_calls (source, started_at);
CREATE INDEX subcenter_calls_transfer_idx ON subcenter_calls (transfer_call_uid)
    WHERE transfer_call_uid IS NOT NULL;

-- Sub-centre tickets, latest version per (source, source_id).
CREATE TABLE subcenter_tickets (
    id                 bigserial PRIMARY KEY,
    source             text NOT NULL REFERENCES ingest_sources (code),
    source_id          text NOT NULL,
    version            bigint NOT NULL CHECK (version >= 1),
    seq                bigint,
    hotline_number     text NOT NULL,
    state              text NOT NULL,
    created_at         timestamptz NOT NULL,
    changed_at         timestamptz,   -- the record's own updated_at
    category           text,
    unit_code          text,
    region             text,
    caller_number      text NOT NULL DEFAULT '',
    summary            text,
    call_source_id     text,
    dispatched_at      timestamptz,
    signed_at          timestamptz,
    replied_at         timestamptz,
    closed_at          timestamptz,
    satisfaction       text,
    data               jsonb NOT NULL,
    batch_id           bigint,
    first_received_at  timestamptz NOT NULL DEFAULT now(),
    received_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id)
);
CREATE INDEX subcenter_tickets_created_idx ON subcenter_tickets (source, created_at);

-- Every record received and what happened to it (accepted = new, updated, duplicate).
CREATE TABLE ingest_receipts (
    id           bigserial PRIMARY KEY,
    batch_id     bigint NOT NULL,
    source       text NOT NULL,
    kind         text NOT NULL,
    source_id    text NOT NULL,
    version      bigint NOT NULL,
    seq          bigint,
    event_at     timestamptz,
    received_at  timestamptz NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('accepted', 'updated', 'duplicate'))
);
CREATE INDEX ingest_receipts_day_idx ON ingest_receipts (source, received_at);

-- Records that failed validation, kept with every reason until fixed.
CREATE TABLE ingest_quarantine (
    id             bigserial PRIMARY KEY,
    source         text NOT NULL REFERENCES ingest_sources (code),
    kind           text NOT NULL CHECK (kind IN ('calls', 'tickets')),
    batch_id       bigint,
    record_index   integer,
    source_id      text,
    version        bigint,
    record         jsonb NOT NULL,      -- as received (CSV rows as an object of strings)
    reasons        jsonb NOT NULL,      -- [{field, code, message}, ...]
    status         text NOT NULL DEFAULT 'open'
                   CHECK (status IN ('open', 'reprocessed', 'superseded', 'discarded')),
    received_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    resolved_by    bigint REFERENCES users (id),
    resolution     jsonb
);
CREATE INDEX ingest_quarantine_open_idx ON ingest_quarantine (source, kind, source_id) WHERE status = 'open';
CREATE INDEX ingest_quarantine_day_idx ON ingest_quarantine (source, received_at);
