-- Telephony call flows (issue 3): the transfer attempt log and the record of
-- journal entries already replayed (so a replay after a database outage is
-- idempotent even for updates, not only for the UNIQUE call_uid inserts).

CREATE TABLE transfer_attempts (
    id              bigserial PRIMARY KEY,
    call_id         bigint NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('expert', 'subcenter')),
    hotline_number  text NOT NULL REFERENCES hotlines (number),  -- the pool's line or the sub-centre's
    target          text,            -- the dialled interface, pool queue or sub-centre dial string
    expert_user_id  bigint REFERENCES users (id),
    ticket_id       bigint,          -- the ticket carried to the expert, or the callback ticket
    outcome         text NOT NULL CHECK (outcome IN (
                        'connecting', 'dialling', 'queued', 'callback_ticket', 'answered',
                        'no_answer', 'busy', 'unreachable', 'failed')),
    reason          text,
    requested_by    bigint REFERENCES users (id),
    via             text NOT NULL DEFAULT 'agi' CHECK (via IN ('agi', 'api')),
    channel_moved   boolean,         -- api: did the AMI redirect succeed (null: no AMI configured)
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX transfer_attempts_call_idx ON transfer_attempts (call_id, created_at);
CREATE INDEX transfer_attempts_expert_idx ON transfer_attempts (expert_user_id) WHERE expert_user_id IS NOT NULL;

CREATE TABLE call_journal_applied (
    entry_id    text PRIMARY KEY,
    call_uid    text NOT NULL,
    op          text NOT NULL,
    written_at  timestamptz NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- Expert selection: ready seats of experts on a line.
CREATE INDEX users_hotline_number_idx ON users (hotline_number) WHERE hotline_number IS NOT NULL;
