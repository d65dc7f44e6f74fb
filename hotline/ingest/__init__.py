"""Data aggregation (数据归集): signed sub-centre batches and Asterisk call records
flowing into the 12345 store.

* :mod:`hotline.ingest.signing` — the HMAC-SHA256 request signature;
* :mod:`hotline.ingest.keys` — sources and their keys (kept outside the database);
* :mod:`hotline.ingest.schema` — the published record schema and validation;
* :mod:`hotline.ingest.store` — the COPY-into-staging + one-transaction merge,
  idempotent by ``(source, source_id, version)``, and the quarantine;
* :mod:`hotline.ingest.cdr` / :mod:`hotline.ingest.follower` — Master.csv,
  queue_log and ``cdr`` table import, followed like ``tail -F``.
"""
