"""JSON in and out."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import functools
import json
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from hotline.errors import ValidationError


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


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps)


async def read_json(request: web.Request, *, expect: type = dict) -> Any:
    """The request body as JSON of the expected top-level type, or a 400 that says why."""
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(body, expect):
        raise ValidationError(
            f"request body must be a JSON {'object' if expect is dict else expect.__name__}",
            field="body",
        )
    return body
