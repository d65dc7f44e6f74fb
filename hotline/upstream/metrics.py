"""Prometheus metrics of the upstream push (also summarised at /api/v1/upstream/status)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SENT = Counter("hotline_upstream_sent_total", "Changes accepted by the upstream platform")
FAILURES = Counter("hotline_upstream_failures_total", "Failed upstream requests", ["kind"])
DEAD_LETTERS = Counter("hotline_upstream_dead_letters_total", "Changes moved to dead-letter")
BACKLOG = Gauge("hotline_upstream_backlog", "Changes waiting to be pushed upstream")
HEAD_ATTEMPTS = Gauge("hotline_upstream_head_attempts", "Refusals of the change at the head of the outbox")
LAG = Gauge("hotline_upstream_lag_seconds", "Age of the oldest change not yet pushed")
