"""Prometheus metrics of the ingest side."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

#: the source label of a request whose signature did not hold (its claimed name is never a label)
UNVERIFIED = "unknown"
REQUESTS = Counter(
    "hotline_ingest_requests_total", "Signed ingest requests by outcome", ["source", "outcome"]
)
RECORDS = Counter(
    "hotline_ingest_records_total", "Ingested records by outcome", ["source", "kind", "outcome"]
)
ASTERISK_ROWS = Counter(
    "hotline_ingest_asterisk_rows_total", "Asterisk CDR / queue_log rows imported", ["kind", "outcome"]
)
CDR_CLOCK_SKEW = Gauge(
    "hotline_ingest_cdr_clock_skew_seconds",
    "CDR start minus the AGI's start of the last matched call (a multiple of 3600: cdr_timezone is wrong)",
)
CDR_CLOCK_SKEWED = Counter(
    "hotline_ingest_cdr_clock_skewed_total", "Matched calls whose CDR start is off the AGI's by more than the tolerance"
)
