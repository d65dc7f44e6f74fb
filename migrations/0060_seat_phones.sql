-- Seats drive Asterisk queue membership (docs/TELEPHONY.md "Seats and queue membership"):
-- an admin gives each agent and expert seat a phone (seats.interface, already unique)
-- and skills (skill tags of registry lines: a dual line's skill puts the agent in its
-- skill queue).
ALTER TABLE seats ADD COLUMN skills text[] NOT NULL DEFAULT '{}';

-- A phone is one Asterisk dial string TECH/resource: no spaces, commas or line breaks
-- (a value that could split a dial string or an AMI header). NOT VALID: rows written
-- before this migration are not re-checked, new writes are.
ALTER TABLE seats ADD CONSTRAINT seats_interface_format
    CHECK (interface IS NULL OR (length(interface) <= 80
                                 AND interface ~ '^[A-Za-z][A-Za-z0-9_]*/[^[:space:],;]+$'))
    NOT VALID;

-- When a seat's phone or skills last changed (who and what: the audit log).
ALTER TABLE seats ADD COLUMN phone_updated_at timestamptz;
