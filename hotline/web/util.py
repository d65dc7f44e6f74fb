"""JSON in and out."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hotline.errors import PayloadTooLarge, UnsupportedMediaType
from hotline.jsoncodec import dumps
from hotline.web.params import MAX_PAGE, invalid, param_int, parse_json, query_int

#: the parsed body when the route's declared schema was checked (hotline.web.validation)
PARSED_BODY = web.RequestKey("parsed_body", object)

__all__ = ["MAX_PAGE", "PARSED_BODY", "dumps", "json_response", "param_int", "query_int", "read_capped",
           "read_json"]


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
            f"请求体必须是 application/json，收到 {request.content_type or 'none'!r}", field="Content-Type"
        )
    if PARSED_BODY in request:  # read and checked against the route's schema already
        if max_bytes is not None and len(await request.read()) > max_bytes:
            raise PayloadTooLarge(f"请求体超过 {max_bytes} 字节的上限", field="body", limit=max_bytes)
        body = request[PARSED_BODY]
    else:
        raw = await request.read() if max_bytes is None else await read_capped(request, max_bytes)
        body = parse_json(raw)
    if not isinstance(body, expect):
        raise invalid("invalid_json", f"请求体必须是 JSON {'对象' if expect is dict else '列表'}", field="body")
    return body


async def read_capped(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"请求体有 {declared} 字节，上限为 {limit} 字节", field="body", limit=limit)
    chunks, size = [], 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"请求体超过 {limit} 字节的上限", field="body", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)
