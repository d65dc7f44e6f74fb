-- Handling units (承办单位) and the hotline registry: 12345 and the 32 legacy lines.
-- Lines are never deleted: a line removed from config/hotlines.yaml is deactivated
-- so that calls and tickets keep their origin.

CREATE TABLE units (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name        text NOT NULL,
    parent_code text REFERENCES units (code),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hotlines (
    number             text PRIMARY KEY CHECK (number ~ '^[0-9]{3,8}$'),
    name               text NOT NULL,
    department         text NOT NULL,
    unit_code          text REFERENCES units (code),
    mode               text NOT NULL CHECK (mode IN ('platform', 'merged', 'dual', 'subcenter')),
    mode_basis         text NOT NULL DEFAULT '',
    queue              text NOT NULL,
    skill              text NOT NULL,
    announcement       text,
    expert_pool        text,
    dial_target        text,
    no_answer_timeout  integer CHECK (no_answer_timeout BETWEEN 5 AND 120),
    service_hours      jsonb NOT NULL DEFAULT '"7x24"',
    active             boolean NOT NULL DEFAULT true,
    synced_at          timestamptz NOT NULL DEFAULT now(),
    deactivated_at     timestamptz,
    CHECK (mode <> 'subcenter' OR dial_target IS NOT NULL),
    CHECK (mode = 'dual' OR expert_pool IS NULL)
);

CREATE INDEX hotlines_mode_idx ON hotlines (mode) WHERE active;
