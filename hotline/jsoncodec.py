"""The one JSON encoding of the backend (HTTP bodies, WebSocket pushes, the
upstream feed): UTF-8 text as is (no ``\\uXXXX`` for Chinese), dates in ISO 8601,
decimals as numbers, objects with ``to_json()`` as what it returns.
Infrastructure: any layer may use it."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import functools
import json
import uuid
from pathlib import Path
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "to_json"):
        return value.to_json()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


dumps = functools.partial(json.dumps, ensure_ascii=False, default=_default)
