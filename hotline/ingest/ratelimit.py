"""A token bucket per source (per node): ``rate_per_minute`` requests, plus a burst."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class RateLimiter:
    burst: int = 20
    clock: object = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key: str, per_minute: int) -> float:
        """Take one token: 0.0 when allowed, else the seconds to wait before retrying."""
        now = self.clock()  # type: ignore[operator]
        capacity = float(max(self.burst, 1))
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, now)
        rate = per_minute / 60.0
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
