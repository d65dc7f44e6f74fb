-- SLA: policies (line x category x urgency x kind x stage), one clock per
-- (ticket, leg, stage, round) with its computed deadline and alert marks, and the
-- alerts fired (unique per clock and level: a warning fires exactly once).

CREATE TABLE sla_policies (
    id             bigserial PRIMARY KEY,
    stage          text NOT NULL CHECK (stage IN ('sign', 'handle', 'reply', 'callback')),
    hotline_number text REFERENCES hotlines (number),
    category_code  text REFERENCES ticket_categories (code) ON DELETE CASCADE,  -- and its subtree
    urgency        text CHECK (urgency IN ('normal', 'urgent', 'critical')),
    kind           text CHECK (kind IN ('enquiry', 'help', 'suggestion', 'complaint', 'report', 'praise')),
    amount         numeric(8, 2) NOT NULL CHECK (amount > 0),
    unit           text NOT NULL CHECK (unit IN ('working_days', 'working_hours', 'hours', 'days')),
    note           text NOT NULL DEFAULT '',
    updated_by     bigint REFERENCES users (id),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (stage, hotline_number, category_code, urgency, kind)
);

CREATE TABLE sla_clocks (
    id            bigserial PRIMARY KEY,
    ticket_id     bigint NOT NULL REFERENCES tickets (id),
    leg_id        bigint REFERENCES ticket_legs (id),
    stage         text NOT NULL CHECK (stage IN ('sign', 'handle', 'reply', 'callback')),
    policy_id     bigint REFERENCES sla_policies (id) ON DELETE SET NULL,
    budget        interval NOT NULL,            -- policy amount + approved extensions
    natural_time  boolean NOT NULL DEFAULT false, -- true: wall-clock time, not working time
    started_at    timestamptz NOT NULL,
    stopped_at    timestamptz,
    outcome       text CHECK (outcome IN ('met', 'missed', 'cancelled')),
    deadline      timestamptz,                  -- NULL while paused (waiting on the citizen)
    levels        integer[] NOT NULL,           -- alert levels in % of the budget, ascending
    marks         timestamptz[] NOT NULL DEFAULT '{}',  -- when each level is reached
    fired         integer NOT NULL DEFAULT 0,   -- levels already fired
    next_check_at timestamptz,                  -- marks[fired + 1] while running
    overdue       boolean NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((stopped_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX sla_clocks_due_idx ON sla_clocks (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX sla_clocks_ticket_idx ON sla_clocks (ticket_id);
CREATE INDEX sla_clocks_running_idx ON sla_clocks (deadline) WHERE stopped_at IS NULL;
CREATE INDEX sla_clocks_started_idx ON sla_clocks (stage, started_at);
CREATE UNIQUE INDEX sla_clocks_one_running_idx ON sla_clocks (ticket_id, coalesce(leg_id, 0), stage)
    WHERE stopped_at IS NULL;

CREATE TABLE sla_alerts (
    id              bigserial PRIMARY KEY,
    clock_id        bigint NOT NULL REFERENCES sla_clocks (id),
    ticket_id       bigint NOT NULL REFERENCES tickets (id),
    stage           text NOT NULL,
    unit_code       text REFERENCES units (code),
    level_pct       integer NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('warning', 'overdue', 'escalation')),
    deadline        timestamptz,
    at              timestamptz NOT NULL DEFAULT now(),
    acknowledged_by bigint REFERENCES users (id),
    acknowledged_at timestamptz,
    UNIQUE (clock_id, level_pct)
);
CREATE INDEX sla_alerts_at_idx ON sla_alerts (at);
CREATE INDEX sla_alerts_open_idx ON sla_alerts (kind, at) WHERE acknowledged_at IS NULL;
