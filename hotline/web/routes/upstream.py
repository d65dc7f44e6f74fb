"""Upstream push: status, counts and the dead-letter table."""

from __future__ import annotations

from aiohttp import web

from hotline.auth import audit
from hotline.db import transaction
from hotline.errors import Conflict, NotFound
from hotline.upstream.config import upstream_settings
from hotline.upstream.worker import status
from hotline.web.access import api_doc, current_user, requires
from hotline.web.keys import RUNTIME
from hotline.web.util import json_response, query_int, read_json


@requires("supervisor", "admin")
@api_doc(tags=["upstream"], responses={200: "cursor, backlog, sent and dead-letter counts, last error"})
async def upstream_status(request: web.Request) -> web.Response:
    """Status and counts of the upstream push."""
    runtime = request.app[RUNTIME]
    return json_response(await status(runtime.pool, upstream_settings(runtime.settings)))


@requires("supervisor", "admin")
@api_doc(tags=["upstream"], query={"status": {"type": "string", "enum": ["dead", "requeued", "sent", "discarded"]},
                                   "limit": {"type": "integer"}},
         responses={200: "dead letters with their last error"})
async def dead_letters(request: web.Request) -> web.Response:
    """List the changes the upstream platform refused (dead-letter)."""
    limit = query_int(request, "limit", 100)
    rows = await request.app[RUNTIME].pool.fetch(
        """SELECT id, change_id, change_txid::text AS change_txid, entity, entity_id, op, changed_at, attempts,
                  last_error, status, dead_at, resolved_at
             FROM upstream_dead_letters WHERE status = $1 ORDER BY id LIMIT $2""",
        request.query.get("status", "dead"), limit,
    )
    return json_response({"items": [dict(r) for r in rows]})


async def _resolve(request: web.Request, new_status: str) -> web.Response:
    try:
        item = int(request.match_info["id"])
    except ValueError:
        raise NotFound(f"没有推送失败的记录 {request.match_info['id']!r}", field="id",
                       value=request.match_info["id"]) from None
    async with transaction(request.app[RUNTIME].pool) as conn:  # the audit row commits with the change
        done = await conn.fetchval(
            "UPDATE upstream_dead_letters SET status = $2 WHERE id = $1 AND status = 'dead' RETURNING id",
            item, new_status,
        )
        if done is None:
            exists = await conn.fetchval("SELECT status FROM upstream_dead_letters WHERE id = $1", item)
            if exists is None:
                raise NotFound(f"没有编号为 {item} 的死信", field="id")
            raise Conflict(f"死信 {item} 的状态是 {exists}，不是 dead", field="id")
        await audit(conn, f"upstream_dead_letter_{new_status}", user=current_user(request),
                    object_type="upstream_dead_letter", object_id=item, remote_addr=request.remote)
    return json_response({"id": item, "status": new_status})


@requires("admin")
@api_doc(tags=["upstream"], responses={200: "requeued: sent again before the queue moves on", 409: "not dead"})
async def requeue(request: web.Request) -> web.Response:
    """Send a dead-lettered change again (after the upstream side was fixed)."""
    return await _resolve(request, "requeued")


@requires("admin")
@api_doc(tags=["upstream"], body={"type": "object"}, responses={200: "discarded", 409: "not dead"})
async def discard(request: web.Request) -> web.Response:
    """Give up on a dead-lettered change."""
    if request.can_read_body:
        await read_json(request)
    return await _resolve(request, "discarded")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/upstream/status", upstream_status)
    app.router.add_get("/api/v1/upstream/dead-letters", dead_letters)
    app.router.add_post("/api/v1/upstream/dead-letters/{id}/requeue", requeue)
    app.router.add_post("/api/v1/upstream/dead-letters/{id}/discard", discard)
