"""The notifications outbox for supervisors: what is waiting, sent and dead (refused by
the gateway too often, with the reason), and requeueing a dead one (audited)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from hotline.auth import audit
from hotline.errors import NotFound, ValidationError
from hotline.notify.worker import requeue
from hotline.phone import mask
from hotline.web.access import api_doc, current_user, requires
from hotline.web.keys import RUNTIME
from hotline.web.util import json_response, param_int, query_int

STATUSES = ("pending", "sent", "dead")


@requires("supervisor", "admin")
@api_doc(tags=["notifications"], query={"status": {"enum": list(STATUSES)}, "limit": {"type": "integer"},
                                        "before_id": {"type": "integer"}},
         responses={200: "notifications, newest first (recipients masked), and the count per status"})
async def list_(request: web.Request) -> web.Response:
    """The notifications outbox: receipts, reminders and results; dead letters with the gateway's reason."""
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise ValidationError(f"参数 status 必须是 {'、'.join(STATUSES)} 之一，收到 {status!r}", field="status",
                              value=status, code="invalid_choice")
    limit = query_int(request, "limit", 100, high=500)
    before = query_int(request, "before_id", None, high=2**62)
    pool = request.app[RUNTIME].pool
    rows = await pool.fetch(
        """SELECT n.id, n.kind, n.ticket_id, t.number AS ticket_number, n.recipient, n.status, n.attempts,
                  n.last_error, n.created_at, n.next_attempt_at, n.sent_at, n.dead_at
             FROM notifications n LEFT JOIN tickets t ON t.id = n.ticket_id
            WHERE ($1::text IS NULL OR n.status = $1) AND ($2::bigint IS NULL OR n.id < $2)
            ORDER BY n.id DESC LIMIT $3""", status, before, limit)
    counts = {r["status"]: r["n"] for r in await pool.fetch(
        "SELECT status, count(*) AS n FROM notifications GROUP BY status")}
    items = [{**dict(r), "recipient": mask(r["recipient"])} for r in rows]
    return json_response({"items": items, "counts": {s: counts.get(s, 0) for s in STATUSES},
                          "next_before_id": items[-1]["id"] if len(items) == limit else None})


@requires("supervisor", "admin")
@api_doc(tags=["notifications"], responses={200: "requeued", 404: "no dead notification with that id"})
async def requeue_(request: web.Request) -> web.Response:
    """Send a dead notification again (after the gateway or the number was fixed); audited."""
    notification_id = param_int(request.match_info, "id", 0, high=2**62)
    rt = request.app[RUNTIME]
    async with rt.pool.acquire() as conn, conn.transaction():
        row = await requeue(conn, notification_id, datetime.now(rt.settings.tz))
        if row is None:
            raise NotFound(f"没有发送失败的通知 {notification_id}", field="id", value=notification_id)
        await audit(conn, "notification_requeued", user=current_user(request), object_type="notification",
                    object_id=notification_id, detail={"kind": row["kind"], "ticket_id": row["ticket_id"]},
                    remote_addr=request.remote)
    return json_response({"notification": row})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/notifications", list_)
    app.router.add_post("/api/v1/notifications/{id}/requeue", requeue_)
