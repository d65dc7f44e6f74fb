-- Public progress look-ups (工单进度查询: ticket number + last 4 digits of the caller's
-- phone): every attempt is kept a while, so that the rate limits per client address and
-- per ticket number hold across nodes and restarts. Pruned by the numbering jobs.
CREATE TABLE progress_lookups (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    client  text NOT NULL,
    number  text NOT NULL,
    ok      boolean NOT NULL DEFAULT false
);
CREATE INDEX progress_lookups_client_idx ON progress_lookups (client, at);
CREATE INDEX progress_lookups_number_idx ON progress_lookups (number, at) WHERE NOT ok;
CREATE INDEX progress_lookups_at_idx ON progress_lookups (at);
