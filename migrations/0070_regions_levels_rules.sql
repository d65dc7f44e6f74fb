-- Issue 13 (dispatch side): regions (属地, GB/T 2260 codes) on tickets and units;
-- multi-level dispatch (centre -> district -> street and back) as a chain of lead
-- legs; refusal outcomes (不予受理 / 转其他渠道) with a reason code; supervision
-- orders (督办单) with their own clock.

-- The region tree: GB/T 2260 codes of the city and its districts (6 digits), the
-- streets and townships (9 digits, 统计用区划代码) and optionally communities (12).
CREATE TABLE regions (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{6}([0-9]{3}([0-9]{3})?)?$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    level       text NOT NULL CHECK (level IN ('city', 'district', 'street', 'community')),
    parent_code text REFERENCES regions (code),
    sort        integer NOT NULL DEFAULT 0,
    active      boolean NOT NULL DEFAULT true,
    updated_by  bigint REFERENCES users (id),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_code IS NULL OR parent_code <> code)
);
CREATE INDEX regions_parent_idx ON regions (parent_code);

-- a unit answers for a region (a district government for its district, a street office
-- for its street); departments have none
ALTER TABLE units ADD COLUMN region_code text REFERENCES regions (code);
CREATE INDEX units_region_idx ON units (region_code) WHERE region_code IS NOT NULL;
CREATE INDEX units_parent_idx ON units (parent_code) WHERE parent_code IS NOT NULL;

ALTER TABLE tickets ADD COLUMN region_code text REFERENCES regions (code);
CREATE INDEX tickets_region_idx ON tickets (region_code, created_at) WHERE region_code IS NOT NULL;

-- Which unit takes a matter of a category in a region (属地 x 分类); a NULL category
-- covers every category of the region. Looked up nearest region, then nearest category.
CREATE TABLE dispatch_region_rules (
    id            bigserial PRIMARY KEY,
    region_code   text NOT NULL REFERENCES regions (code) ON DELETE CASCADE,
    category_code text REFERENCES ticket_categories (code) ON DELETE CASCADE,
    unit_code     text NOT NULL REFERENCES units (code),
    note          text NOT NULL DEFAULT '',
    updated_by    bigint REFERENCES users (id),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (region_code, category_code)
);

-- Multi-level dispatch: a lead leg that a district passed down to a street becomes
-- 'delegated'; the street's leg points at it. The active lead of a ticket is the one
-- lead leg that is neither withdrawn nor delegated nor a finished lower-level leg.
ALTER TABLE ticket_legs ADD COLUMN parent_leg_id bigint REFERENCES ticket_legs (id);
ALTER TABLE ticket_legs ADD COLUMN level smallint NOT NULL DEFAULT 1;
ALTER TABLE ticket_legs ADD COLUMN returned_at timestamptz;
ALTER TABLE ticket_legs DROP CONSTRAINT ticket_legs_state_check;
ALTER TABLE ticket_legs ADD CONSTRAINT ticket_legs_state_check CHECK (state IN (
    'dispatched', 'signed', 'returned', 'replied', 'withdrawn', 'closed', 'delegated'));
DROP INDEX ticket_legs_one_lead_idx;
CREATE UNIQUE INDEX ticket_legs_one_lead_idx ON ticket_legs (ticket_id)
    WHERE role = 'lead' AND state NOT IN ('withdrawn', 'delegated')
      AND (parent_leg_id IS NULL OR state IN ('dispatched', 'signed'));
CREATE INDEX ticket_legs_parent_idx ON ticket_legs (parent_leg_id) WHERE parent_leg_id IS NOT NULL;

-- Outcomes without handling: 不予受理 (refused) and 转其他渠道 (transferred), each
-- with a reason code from config/refusal_reasons.yaml.
ALTER TABLE tickets DROP CONSTRAINT tickets_close_kind_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_close_kind_check
    CHECK (close_kind IN ('direct', 'completed', 'merged', 'refused', 'transferred'));
ALTER TABLE tickets ADD COLUMN refusal_reason text;
CREATE INDEX tickets_refused_idx ON tickets (closed_at, close_kind) WHERE close_kind IN ('refused', 'transferred');

-- Supervision orders (督办单): an instruction to the handling unit with a reply
-- deadline; the reply stops its clock (stage 'supervise').
ALTER TABLE sla_clocks DROP CONSTRAINT sla_clocks_stage_check;
ALTER TABLE sla_clocks ADD CONSTRAINT sla_clocks_stage_check
    CHECK (stage IN ('sign', 'handle', 'reply', 'callback', 'supervise'));
DROP INDEX sla_clocks_one_running_idx;
CREATE UNIQUE INDEX sla_clocks_one_running_idx ON sla_clocks (ticket_id, coalesce(leg_id, 0), stage)
    WHERE stopped_at IS NULL AND stage <> 'supervise';

-- a clock without a policy (explicit due time, capped by its parent) keeps its own
-- budget here, so approved extensions are added to it once, not at every recompute
ALTER TABLE sla_clocks ADD COLUMN base_budget interval;

CREATE TABLE supervision_orders (
    id           bigserial PRIMARY KEY,
    ticket_id    bigint NOT NULL REFERENCES tickets (id),
    leg_id       bigint REFERENCES ticket_legs (id),
    unit_code    text NOT NULL REFERENCES units (code),
    instruction  text NOT NULL CHECK (length(instruction) BETWEEN 1 AND 4000),
    reply_due_at timestamptz NOT NULL,
    clock_id     bigint REFERENCES sla_clocks (id),
    reply        text,
    replied_at   timestamptz,
    replied_by   bigint REFERENCES users (id),
    created_by   bigint REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((reply IS NULL) = (replied_at IS NULL))
);
CREATE INDEX supervision_orders_ticket_idx ON supervision_orders (ticket_id, id);
CREATE INDEX supervision_orders_open_idx ON supervision_orders (unit_code, reply_due_at) WHERE replied_at IS NULL;
