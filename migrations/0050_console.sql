-- Console: a per-person inbox of things that arrived for someone (a call
-- transferred to an expert seat, with the ticket so far) and what they did with it.
-- Rows are written idempotently from events by every web node (UNIQUE key), so
-- the expert's list survives a reload and a node restart.

CREATE TABLE console_inbox (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('transfer')),
    call_id      bigint REFERENCES calls (id),
    ticket_id    bigint,
    from_user_id bigint REFERENCES users (id),
    state        text NOT NULL DEFAULT 'new'
                 CHECK (state IN ('new', 'accepted', 'answered', 'returned', 'closed')),
    answer       text,
    detail       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, call_id, user_id)
);
CREATE INDEX console_inbox_open_idx ON console_inbox (user_id, created_at) WHERE state IN ('new', 'accepted');
