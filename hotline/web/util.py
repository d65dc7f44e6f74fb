"""JSON in and out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, overload

from aiohttp import web

from hotline.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError
from hotline.jsoncodec import dumps

#: the most a list route returns in one page unless it says otherwise
MAX_PAGE = 1000


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps)


async def read_json(
    request: web.Request, *, expect: type = dict, max_bytes: int | None = None, strict_type: bool = False
) -> Any:
    """The request body as JSON of the expected top-level type, or a 400 that says why.

    With ``max_bytes`` a longer body is refused (413) before it is read whole; with
    ``strict_type`` a body not declared ``application/json`` is refused (415)."""
    if strict_type and request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"the body must be application/json, got {request.content_type or 'none'!r}", field="Content-Type"
        )
    try:
        if max_bytes is None:
            raw = await request.read()
        else:
            raw = await read_capped(request, max_bytes)
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(body, expect):
        raise ValidationError(
            f"request body must be a JSON {'object' if expect is dict else expect.__name__}",
            field="body",
        )
    return body


async def read_capped(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}", field="body", limit=limit)
    chunks, size = [], 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes", field="body", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


@overload
def query_int(request: web.Request, name: str, default: int, *, low: int = 1, high: int = MAX_PAGE) -> int: ...
@overload
def query_int(request: web.Request, name: str, default: None, *, low: int = 1, high: int = MAX_PAGE) -> int | None: ...
def query_int(request: web.Request, name: str, default: int | None, *, low: int = 1, high: int = MAX_PAGE) -> int | None:
    """An integer query parameter within ``low..high`` (a page's ``limit``, ``offset``, an
    id cursor), or ``default`` when absent; anything else is a 400 naming it and the value."""
    return param_int(request.query, name, default, low=low, high=high)


@overload
def param_int(params: Mapping[str, str], name: str, default: int, *, low: int = 1, high: int = MAX_PAGE) -> int: ...
@overload
def param_int(params: Mapping[str, str], name: str, default: None, *, low: int = 1,
              high: int = MAX_PAGE) -> int | None: ...
def param_int(params: Mapping[str, str], name: str, default: int | None, *, low: int = 1,
              high: int = MAX_PAGE) -> int | None:
    """:func:`query_int` over any parameter mapping (a query string, a form)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} 必须是整数，收到 {raw!r}", field=name, value=raw) from None
    if not low <= value <= high:
        raise ValidationError(f"{name} 必须在 {low} 到 {high} 之间，收到 {value}", field=name, value=raw)
    return value
