-- Denormalised facts the supervisor reports aggregate without reading the history:
-- kept by the workflow in the same transaction as the history event.
ALTER TABLE tickets ADD COLUMN dispatched_at timestamptz;
ALTER TABLE tickets ADD COLUMN returned_count integer NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN extended_count integer NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN callback_due_at timestamptz;   -- reply approved: callback owed
ALTER TABLE tickets ADD COLUMN callback_at timestamptz;       -- callback done (satisfaction recorded)

-- The unit and line of a clock, so on-time rates group without joins.
ALTER TABLE sla_clocks ADD COLUMN unit_code text;
ALTER TABLE sla_clocks ADD COLUMN hotline_number text;
CREATE INDEX tickets_created_line_idx ON tickets (created_at, hotline_number);
