-- The working-day calendar: Monday-Friday work and Saturday-Sunday rest unless a
-- day is listed here: a public holiday (kind 'holiday') or a make-up working day
-- (调休上班, kind 'workday'). Seeded per year from config/calendar/<year>.yaml,
-- editable through the API; SLA deadlines are recomputed after an edit.

CREATE TABLE calendar_years (
    year        integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 2100),
    source      text NOT NULL DEFAULT '',
    provisional boolean NOT NULL DEFAULT false,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE calendar_days (
    day         date PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name        text NOT NULL DEFAULT '',
    provisional boolean NOT NULL DEFAULT false,
    updated_by  bigint REFERENCES users (id),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Working-hour windows of every working day, in local time (Asia/Shanghai).
CREATE TABLE calendar_hours (
    position integer PRIMARY KEY,
    opens    time NOT NULL,
    closes   time NOT NULL,
    CHECK (opens < closes)
);
INSERT INTO calendar_hours (position, opens, closes) VALUES (1, '08:30', '12:00'), (2, '13:30', '17:30');
