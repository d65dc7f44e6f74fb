-- 回访 records whether the matter was resolved (解决 / 部分解决 / 未解决) beside the
-- satisfaction, for the resolution rate (解决率); unit assessment (考核): appeals by a
-- unit against a ticket counting in its figures, and exemptions (免责) that take a
-- ticket out of a unit's figures. Definitions: docs/RATES.md.

ALTER TABLE tickets ADD COLUMN resolution text CHECK (resolution IN ('resolved', 'partly', 'unresolved'));
CREATE INDEX tickets_callback_at_idx ON tickets (callback_at) WHERE callback_at IS NOT NULL;

-- A unit asks the centre to leave a ticket out of its assessment (申诉), with a reason;
-- the centre approves (an exemption follows) or rejects, with a reason.
CREATE TABLE assessment_appeals (
    id             bigserial PRIMARY KEY,
    ticket_id      bigint NOT NULL REFERENCES tickets (id),
    unit_code      text NOT NULL REFERENCES units (code),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    created_by     bigint REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    decided_by     bigint REFERENCES users (id),
    decided_at     timestamptz,
    decision_reason text,
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
-- one open appeal per ticket and unit
CREATE UNIQUE INDEX assessment_appeals_open_idx ON assessment_appeals (ticket_id, unit_code)
    WHERE status = 'pending';
CREATE INDEX assessment_appeals_status_idx ON assessment_appeals (status, id);

-- A ticket left out of a unit's assessment (response, resolution and satisfaction rates).
CREATE TABLE assessment_exemptions (
    id          bigserial PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets (id),
    unit_code   text NOT NULL REFERENCES units (code),
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    appeal_id   bigint REFERENCES assessment_appeals (id),
    created_by  bigint REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_by  bigint REFERENCES users (id),
    revoked_at  timestamptz,
    revoke_reason text
);
CREATE UNIQUE INDEX assessment_exemptions_active_idx ON assessment_exemptions (ticket_id, unit_code)
    WHERE revoked_at IS NULL;
