-- Tickets (工单): intake with the five elements, the dispatch legs to handling
-- units (主办/协办), the append-only history, links to calls, the category code
-- table and the dispatch catalogue (category -> default lead unit).

-- Handling units get a kind and a contact; practical units that no hotline owns
-- (城管, 公安, districts and streets) are added here; the registry adds its own.
ALTER TABLE units ADD COLUMN kind text NOT NULL DEFAULT 'department'
    CHECK (kind IN ('department', 'district', 'street', 'enterprise', 'centre', 'other'));
ALTER TABLE units ADD COLUMN contact_phone text NOT NULL DEFAULT '';

INSERT INTO units (code, name, kind) VALUES
    ('urban-mgmt', '综合行政执法局（城管）', 'department'),
    ('public-security', '公安局', 'department'),
    ('education', '教育局', 'department'),
    ('water-resources', '水利局', 'department'),
    ('water-supply', '自来水公司', 'enterprise'),
    ('power-supply', '供电公司', 'enterprise'),
    ('gas-supply', '燃气公司', 'enterprise'),
    ('telecom', '通信运营商', 'enterprise'),
    ('dinghai', '定海区人民政府', 'district'),
    ('putuo', '普陀区人民政府', 'district'),
    ('daishan', '岱山县人民政府', 'district'),
    ('shengsi', '嵊泗县人民政府', 'district'),
    ('xincheng', '新城管委会', 'district')
ON CONFLICT (code) DO NOTHING;
INSERT INTO units (code, name, kind, parent_code) VALUES
    ('dinghai-jiefang', '定海区解放街道', 'street', 'dinghai'),
    ('dinghai-huannan', '定海区环南街道', 'street', 'dinghai'),
    ('dinghai-chengdong', '定海区城东街道', 'street', 'dinghai'),
    ('putuo-shenjiamen', '普陀区沈家门街道', 'street', 'putuo'),
    ('putuo-donggang', '普陀区东港街道', 'street', 'putuo'),
    ('daishan-gaoting', '岱山县高亭镇', 'street', 'daishan'),
    ('shengsi-caiyuan', '嵊泗县菜园镇', 'street', 'shengsi'),
    ('xincheng-lincheng', '新城临城街道', 'street', 'xincheng')
ON CONFLICT (code) DO NOTHING;

-- The category code table (tree), seeded from config/categories.yaml.
CREATE TABLE ticket_categories (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    parent_code text REFERENCES ticket_categories (code),
    sort        integer NOT NULL DEFAULT 0,
    active      boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_code IS NULL OR parent_code <> code)
);
CREATE INDEX ticket_categories_parent_idx ON ticket_categories (parent_code);

-- The dispatch catalogue: which unit leads a ticket of a category by default.
CREATE TABLE dispatch_catalogue (
    category_code text PRIMARY KEY REFERENCES ticket_categories (code) ON DELETE CASCADE,
    unit_code     text NOT NULL REFERENCES units (code),
    note          text NOT NULL DEFAULT '',
    updated_by    bigint REFERENCES users (id),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tickets (
    id               bigserial PRIMARY KEY,
    state            text NOT NULL DEFAULT 'intake' CHECK (state IN (
                         'intake', 'dispatched', 'handling', 'return_review', 'extension_review',
                         'waiting_citizen', 'reply_review', 'callback', 'closed', 'merged')),
    hotline_number   text NOT NULL REFERENCES hotlines (number),   -- the origin line
    channel          text NOT NULL DEFAULT 'phone' CHECK (channel IN (
                         'phone', 'web', 'app', 'wechat', 'sms', 'email', 'letter', 'visit', 'ingest')),
    source           text NOT NULL DEFAULT 'console',             -- console | callback | api | ingest
    kind             text NOT NULL DEFAULT 'help' CHECK (kind IN (
                         'enquiry', 'help', 'suggestion', 'complaint', 'report', 'praise')),
    category_code    text REFERENCES ticket_categories (code),
    urgency          text NOT NULL DEFAULT 'normal' CHECK (urgency IN ('normal', 'urgent', 'critical')),
    -- the five elements: who (caller_*), when (occurred_at), where (location), what (subject), facts
    subject          text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    facts            text NOT NULL DEFAULT '',
    location         text NOT NULL DEFAULT '',
    occurred_at      timestamptz,
    caller_name      text NOT NULL DEFAULT '',
    caller_number    text NOT NULL DEFAULT '',                    -- normalised (hotline.phone)
    contact_number   text NOT NULL DEFAULT '',                    -- normalised, when not the caller number
    confidential     boolean NOT NULL DEFAULT false,              -- caller identity hidden from units
    attachments      jsonb NOT NULL DEFAULT '[]',                 -- references, never content
    lead_unit_code   text REFERENCES units (code),
    master_id        bigint REFERENCES tickets (id),
    close_kind       text CHECK (close_kind IN ('direct', 'completed', 'merged')),
    answer           text,                                        -- direct answer or approved reply
    satisfaction     smallint CHECK (satisfaction BETWEEN 1 AND 5),
    reopen_count     integer NOT NULL DEFAULT 0,
    callback_call_id bigint UNIQUE REFERENCES calls (id),         -- a callback request from the IVR
    created_by       bigint REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    closed_at        timestamptz,
    CHECK (master_id IS NULL OR master_id <> id),
    CHECK ((state = 'merged') = (master_id IS NOT NULL))
);
CREATE INDEX tickets_caller_open_idx ON tickets (caller_number, created_at DESC)
    WHERE state NOT IN ('closed', 'merged') AND caller_number <> '';
CREATE INDEX tickets_created_idx ON tickets (created_at);
CREATE INDEX tickets_closed_idx ON tickets (closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX tickets_state_idx ON tickets (state, id);
CREATE INDEX tickets_master_idx ON tickets (master_id) WHERE master_id IS NOT NULL;
CREATE INDEX tickets_lead_unit_idx ON tickets (lead_unit_code, state);

-- One leg per unit the ticket went to: a lead (主办) and optional assisting units (协办).
CREATE TABLE ticket_legs (
    id             bigserial PRIMARY KEY,
    ticket_id      bigint NOT NULL REFERENCES tickets (id),
    unit_code      text NOT NULL REFERENCES units (code),
    role           text NOT NULL CHECK (role IN ('lead', 'assist')),
    state          text NOT NULL DEFAULT 'dispatched' CHECK (state IN (
                       'dispatched', 'signed', 'returned', 'replied', 'withdrawn', 'closed')),
    dispatched_at  timestamptz NOT NULL DEFAULT now(),
    signed_at      timestamptz,
    replied_at     timestamptz,
    return_reason  text,
    reply          text,
    reply_basis    text,
    extension_minutes integer NOT NULL DEFAULT 0,    -- approved extensions, in working minutes
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_legs_ticket_idx ON ticket_legs (ticket_id);
CREATE INDEX ticket_legs_unit_idx ON ticket_legs (unit_code, ticket_id) WHERE state <> 'withdrawn';
CREATE UNIQUE INDEX ticket_legs_one_lead_idx ON ticket_legs (ticket_id)
    WHERE role = 'lead' AND state <> 'withdrawn';
CREATE UNIQUE INDEX ticket_legs_one_per_unit_idx ON ticket_legs (ticket_id, unit_code)
    WHERE state <> 'withdrawn';

-- The history: every change, who, when, from-state, to-state, note. Append-only.
CREATE TABLE ticket_events (
    id          bigserial PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets (id),
    leg_id      bigint REFERENCES ticket_legs (id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint REFERENCES users (id),
    actor_name  text NOT NULL DEFAULT '',
    action      text NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    note        text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ticket_events_ticket_idx ON ticket_events (ticket_id, id);
CREATE INDEX ticket_events_at_idx ON ticket_events (at, action);

CREATE FUNCTION ticket_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ticket history is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ticket_events_no_update BEFORE UPDATE OR DELETE ON ticket_events
    FOR EACH ROW EXECUTE FUNCTION ticket_events_append_only();
CREATE TRIGGER ticket_events_no_truncate BEFORE TRUNCATE ON ticket_events
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_events_append_only();

-- Calls linked to a ticket (the first call also sets calls.ticket_id).
CREATE TABLE ticket_calls (
    ticket_id  bigint NOT NULL REFERENCES tickets (id),
    call_id    bigint NOT NULL REFERENCES calls (id),
    linked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, call_id)
);
CREATE INDEX ticket_calls_call_idx ON ticket_calls (call_id);
