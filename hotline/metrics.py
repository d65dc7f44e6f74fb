"""Process-wide Prometheus metrics (text format at ``GET /metrics``).

Metrics live in the default ``prometheus_client`` registry because they describe
the process; feature packages define theirs next to their code.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "hotline_http_requests_total", "HTTP requests handled", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "hotline_http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_IN_FLIGHT = Gauge("hotline_http_requests_in_flight", "HTTP requests being handled")
DB_POOL_SIZE = Gauge("hotline_db_pool_connections", "asyncpg pool connections", ["state"])
SIGN_INS = Counter("hotline_sign_ins_total", "Console sign-in attempts", ["outcome"])
