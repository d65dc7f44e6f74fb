"""``GET /api/v1/feed``: new and changed calls and tickets from a cursor, as
WebSocket, Server-Sent Events, or a JSON page (long poll)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from hotline.errors import Forbidden
from hotline.feed.changes import Cursor, check_cursor, fetch_after, head, parse_entities
from hotline.feed.hub import DELIVERED, SUBSCRIBERS, FeedHub
from hotline.web.access import api_doc, requires
from hotline.web.keys import RUNTIME
from hotline.web.util import dumps, json_response, query_int

HUB = web.AppKey("feed_hub", FeedHub)
BATCH = 500
IDLE_POLL = 1.0     # seconds between reads when nothing was announced (safety net)
HELD_POLL = 0.05    # seconds between reads while an older transaction holds rows back
KEEPALIVE = 15.0


async def _start(request: web.Request) -> tuple[Cursor, list[str] | None, FeedHub]:
    runtime = request.app[RUNTIME]
    hub = request.app[HUB]
    await hub.start(runtime)
    entities = parse_entities(request.query.get("entities"))
    text = request.headers.get("Last-Event-ID") or request.query.get("cursor")
    if text:
        cursor = Cursor.parse(text)
        await check_cursor(runtime.pool, cursor)
    else:
        cursor = await head(runtime.pool)
    return cursor, entities, hub


async def _next_batch(request: web.Request, hub: FeedHub, cursor: Cursor, entities: list[str] | None,
                      max_wait: float) -> list:
    """Changes after ``cursor``, waiting up to ``max_wait`` seconds for some to appear."""
    pool = request.app[RUNTIME].pool
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait
    while True:
        event = hub.current()
        changes, held = await fetch_after(pool, cursor, limit=BATCH, entities=entities)
        left = deadline - loop.time()
        if changes or left <= 0:
            return changes
        await hub.wait(event, min(left, HELD_POLL if held else IDLE_POLL))


@requires("supervisor", "admin")
@api_doc(
    tags=["feed"],
    query={
        "cursor": {"type": "string", "description": "resume after this cursor (<txid>-<id>); 0 = from the "
                   "start of the retained log; absent = from now. SSE also honours Last-Event-ID."},
        "entities": {"type": "string", "description": "comma list of call, ticket, subcenter_call, "
                     "subcenter_ticket (default: all)"},
        "wait": {"type": "number", "description": "JSON mode: seconds to wait for changes (long poll, ≤ 25)"},
        "limit": {"type": "integer", "description": "JSON mode: most changes per page (≤ 500)"},
    },
    responses={200: "WebSocket (Upgrade), text/event-stream (Accept), or a JSON page {items, cursor}",
               410: "cursor older than the retained change log"},
)
async def feed(request: web.Request) -> web.StreamResponse:
    """Stream new and changed calls and tickets from a cursor (WebSocket, SSE or JSON).

    Each change carries its cursor; reconnecting with the last cursor received
    delivers everything after it, in order, with no gap and no duplicate.
    Callers' numbers are masked."""
    if request.headers.get("Upgrade", "").lower() == "websocket":
        _check_origin(request)
    cursor, entities, hub = await _start(request)
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _websocket(request, hub, cursor, entities)
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await _sse(request, hub, cursor, entities)
    limit = query_int(request, "limit", BATCH, high=BATCH)
    try:
        wait = max(0.0, min(float(request.query.get("wait", "0")), 25.0))
    except ValueError:
        from hotline.errors import ValidationError

        raise ValidationError(f"参数 wait 必须是秒数，收到 {request.query.get('wait')!r}", field="wait",
                              value=request.query.get("wait"), code="invalid_number") from None
    changes = (await _next_batch(request, hub, cursor, entities, wait))[:limit]
    DELIVERED.labels("json").inc(len(changes))
    return json_response({
        "items": [c.to_json() for c in changes],
        "cursor": str(changes[-1].cursor if changes else cursor),
    })


def _check_origin(request: web.Request) -> None:
    """A browser page of another site must not ride a supervisor's session cookie into
    the feed (cross-site WebSocket hijacking); clients that send no Origin are not browsers."""
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise Forbidden("拒绝来自其他站点的 WebSocket 连接 (cross-site WebSocket refused)", field="Origin")


async def _sse(request: web.Request, hub: FeedHub, cursor: Cursor, entities: list[str] | None) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    SUBSCRIBERS.labels("sse").inc()
    try:
        await response.write(f"retry: 2000\nevent: hello\ndata: {json.dumps({'cursor': str(cursor)})}\n\n".encode())
        while True:
            changes = await _next_batch(request, hub, cursor, entities, KEEPALIVE)
            if not changes:
                await response.write(b": keepalive\n\n")
                continue
            parts = [f"id: {c.cursor}\nevent: change\ndata: {dumps(c.to_json())}\n\n" for c in changes]
            await response.write("".join(parts).encode())
            cursor = changes[-1].cursor
            DELIVERED.labels("sse").inc(len(changes))
    except ConnectionResetError:
        pass  # the subscriber went away; it resumes with its last cursor
    finally:
        SUBSCRIBERS.labels("sse").dec()
    return response


async def _websocket(request: web.Request, hub: FeedHub, cursor: Cursor,
                     entities: list[str] | None) -> web.StreamResponse:
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    SUBSCRIBERS.labels("websocket").inc()

    async def reader() -> None:
        async for msg in ws:  # the client only ever closes; anything it sends is ignored
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break

    reading = asyncio.create_task(reader())
    try:
        await ws.send_str(dumps({"type": "hello", "cursor": str(cursor)}))
        while not ws.closed and not reading.done():
            changes = await _next_batch(request, hub, cursor, entities, KEEPALIVE)
            for change in changes:
                await ws.send_str(dumps({"type": "change", **change.to_json()}))
            if changes:
                cursor = changes[-1].cursor
                DELIVERED.labels("websocket").inc(len(changes))
    except ConnectionResetError:
        pass  # the subscriber went away; it resumes with its last cursor
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        SUBSCRIBERS.labels("websocket").dec()
        await ws.close()
    return ws


def setup(app: web.Application) -> None:
    app[HUB] = FeedHub()
    app.router.add_get("/api/v1/feed", feed)
