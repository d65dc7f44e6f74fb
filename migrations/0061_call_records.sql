-- Asterisk's records as facts of exactly one citizen call (hotline/ingest/cdr.py):
-- rows are grouped by linkedid, the citizen's channel is the row tagged
-- `hotline:<line>[:fallback]` (or the AGI record's call_uid), every other leg is linked
-- to that call and never counted as one. A group nobody can identify yet stays
-- unlinked (call_id NULL) until its tag or its AGI record arrives.

-- the group key, as the import computes it (linkedid; the uniqueid without newcdrcolumns)
CREATE INDEX cdr_records_group_idx ON cdr_records ((coalesce(nullif(linkedid, ''), uniqueid)));
-- legs still waiting for their call (the data-quality report lists the old ones)
CREATE INDEX cdr_records_unlinked_idx ON cdr_records (imported_at) WHERE call_id IS NULL;
CREATE INDEX queue_log_events_pending_idx ON queue_log_events (callid) WHERE call_id IS NULL;

-- CDR start − the AGI's started_at of the same channel, in seconds, stored on the
-- citizen's rows when it exceeds [ingest] cdr_skew_tolerance: the PBX writes its CDR
-- in another zone than [ingest] cdr_timezone says (or its clock is off)
ALTER TABLE cdr_records ADD COLUMN clock_skew_seconds integer;
CREATE INDEX cdr_records_skew_idx ON cdr_records (start_at) WHERE clock_skew_seconds IS NOT NULL;
