-- Core telephony records shared by the call flows, tickets, reports, the feed and
-- the console: one row per call that reached us, and each seat's live state.

CREATE TABLE calls (
    id                bigserial PRIMARY KEY,
    -- Asterisk's uniqueid of the inbound channel (idempotency key for AGI + CDR import)
    call_uid          text NOT NULL UNIQUE,
    linkedid          text,
    channel           text,
    source            text NOT NULL DEFAULT 'agi',       -- agi | cdr | simulate | ingest
    hotline_number    text NOT NULL REFERENCES hotlines (number),  -- the line the caller dialled
    dialled           text,                               -- raw DNID/extension as received
    caller_number     text NOT NULL DEFAULT '',           -- normalised (hotline.phone.normalize)
    caller_raw        text,
    caller_kind       text NOT NULL DEFAULT 'anonymous',
    caller_name       text,
    route             text,          -- platform | merged | dual | subcenter | blocked | out_of_hours | fallback
    queue             text,
    skill             text,
    dial_target       text,
    decisions         jsonb NOT NULL DEFAULT '[]',        -- every routing decision, in order
    state             text NOT NULL DEFAULT 'ringing'
                      CHECK (state IN ('ringing', 'queued', 'answered', 'transferred',
                                       'completed', 'abandoned', 'failed')),
    disposition       text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    queued_at         timestamptz,
    answered_at       timestamptz,
    ended_at          timestamptz,
    wait_seconds      numeric(10, 3),
    talk_seconds      numeric(10, 3),
    acw_seconds       numeric(10, 3),
    agent_id          bigint REFERENCES users (id),
    answered_by       text,          -- interface/extension or sub-centre that answered
    ticket_id         bigint,        -- the ticket opened or linked on this call
    repeat_ticket_id  bigint,        -- an open ticket of the same caller (repeat caller)
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX calls_started_idx ON calls (started_at);
CREATE INDEX calls_line_started_idx ON calls (hotline_number, started_at);
CREATE INDEX calls_caller_idx ON calls (caller_number, started_at) WHERE caller_number <> '';
CREATE INDEX calls_open_idx ON calls (state) WHERE state IN ('ringing', 'queued', 'answered', 'transferred');
CREATE INDEX calls_linkedid_idx ON calls (linkedid);

-- Live seat state of agents and expert seats (one row per user who ever signed on).
CREATE TABLE seats (
    user_id         bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    state           text NOT NULL DEFAULT 'offline'
                    CHECK (state IN ('offline', 'ready', 'on_call', 'after_call', 'break')),
    reason          text,            -- break reason
    since           timestamptz NOT NULL DEFAULT now(),
    interface       text,            -- Asterisk interface of the seat's phone, e.g. PJSIP/8001
    current_call_id bigint REFERENCES calls (id),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX seats_ready_idx ON seats (state) WHERE state = 'ready';
CREATE UNIQUE INDEX seats_interface_idx ON seats (interface) WHERE interface IS NOT NULL;

-- Emergency and out-of-scope numbers callers are refused or redirected for, and
-- abusive callers an office has blocked (with who and why).
CREATE TABLE blocklist (
    caller_number text PRIMARY KEY,
    reason        text NOT NULL,
    created_by    bigint REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz
);
