"""Prometheus metrics of the ingest side."""

from __future__ import annotations

from prometheus_client import Counter

REQUESTS = Counter(
    "hotline_ingest_requests_total", "Signed ingest requests by outcome", ["source", "outcome"]
)
RECORDS = Counter(
    "hotline_ingest_records_total", "Ingested records by outcome", ["source", "kind", "outcome"]
)
ASTERISK_ROWS = Counter(
    "hotline_ingest_asterisk_rows_total", "Asterisk CDR / queue_log rows imported", ["kind", "outcome"]
)
