"""SLA policies, alerts (warnings, overdue, escalations) and the overdue list."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from hotline.auth import audit
from hotline.db import transaction
from hotline.errors import NotFound, ValidationError
from hotline.sla.clocks import recompute_all
from hotline.sla.config import sla_config
from hotline.sla.policies import create_policy, delete_policy, list_policies, update_policy
from hotline.tickets.scope import scope_units
from hotline.web.access import api_doc, current_user, requires
from hotline.web.keys import RUNTIME
from hotline.web.params import path_int, query_bool
from hotline.web.util import json_response, query_int, read_json

TAGS = ["sla"]
POLICY_BODY = {"type": "object", "properties": {
    "stage": {"enum": ["sign", "handle", "reply", "callback"]}, "hotline_number": {"type": ["string", "null"]},
    "category_code": {"type": ["string", "null"]}, "urgency": {"enum": ["normal", "urgent", "critical", None]},
    "kind": {"enum": ["enquiry", "help", "suggestion", "complaint", "report", "praise", None]},
    "amount": {"type": "number"}, "unit": {"enum": ["working_days", "working_hours", "hours", "days"]},
    "note": {"type": "string"}}}


@requires()
@api_doc(tags=TAGS, responses={200: "every policy"})
async def policies(request: web.Request) -> web.Response:
    """SLA policies per stage x line x category x urgency x kind."""
    return json_response({"items": await list_policies(request.app[RUNTIME].pool)})


async def _after_change(request: web.Request, conn: asyncpg.Connection, action: str, detail: dict) -> int:
    await audit(conn, action, user=current_user(request), object_type="sla_policy", detail=detail)
    rt = request.app[RUNTIME]
    return await recompute_all(conn, await rt.calendars.load(conn), rules=sla_config(rt.files))


@requires("admin", "supervisor")
@api_doc(tags=TAGS, body=POLICY_BODY, responses={201: "created; running clocks recomputed", 409: "duplicate"})
async def policy_create(request: web.Request) -> web.Response:
    """Add an SLA policy."""
    body = await read_json(request)
    async with transaction(request.app[RUNTIME].pool) as conn:  # the audit row commits with the change
        policy = await create_policy(conn, body, user_id=current_user(request).id)
        n = await _after_change(request, conn, "sla_policy_created", {"id": policy["id"]})
    return json_response({"policy": policy, "clocks_recomputed": n}, status=201)


@requires("admin", "supervisor")
@api_doc(tags=TAGS, body=POLICY_BODY, responses={200: "updated; running clocks recomputed"})
async def policy_update(request: web.Request) -> web.Response:
    """Change an SLA policy; running deadlines that use it are recomputed."""
    body = await read_json(request)
    async with transaction(request.app[RUNTIME].pool) as conn:  # the audit row commits with the change
        policy = await update_policy(conn, path_int(request), body, user_id=current_user(request).id)
        n = await _after_change(request, conn, "sla_policy_updated", {"id": policy["id"], "changed": sorted(body)})
    return json_response({"policy": policy, "clocks_recomputed": n})


@requires("admin", "supervisor")
@api_doc(tags=TAGS, responses={200: "deleted", 404: "no such policy"})
async def policy_delete(request: web.Request) -> web.Response:
    """Delete an SLA policy (running clocks keep the budget they had)."""
    async with transaction(request.app[RUNTIME].pool) as conn:  # the audit row commits with the change
        await delete_policy(conn, path_int(request))
        await audit(conn, "sla_policy_deleted", user=current_user(request), object_type="sla_policy",
                    object_id=path_int(request))
    return json_response({"ok": True})


@requires()
@api_doc(tags=TAGS, query={"kind": {"enum": ["warning", "overdue", "escalation"]},
                           "open": {"type": "boolean", "description": "only unacknowledged"},
                           "limit": {"type": "integer"}},
         responses={200: "alerts, newest first (a liaison sees its unit's)"})
async def alerts(request: web.Request) -> web.Response:
    """SLA alerts: warnings at % elapsed, overdue marks and escalations to supervisors."""
    user = current_user(request)
    kind = request.query.get("kind")
    if kind not in (None, "warning", "overdue", "escalation"):
        raise ValidationError(f"参数 kind 必须是 warning、overdue 或 escalation，收到 {kind!r}", field="kind",
                              value=kind, code="invalid_choice")
    limit = query_int(request, "limit", 100)
    pool = request.app[RUNTIME].pool
    # open: unacknowledged alerts of clocks still running (a signed or replied stage
    # is no longer at risk), the facts the tickets' sla_state reads
    rows = await pool.fetch(
        """SELECT a.id, a.ticket_id, a.stage, a.unit_code, a.level_pct, a.kind, a.deadline, a.at,
                  a.acknowledged_by, a.acknowledged_at, t.number AS ticket_number, t.subject, t.state
             FROM sla_alerts a JOIN tickets t ON t.id = a.ticket_id
            WHERE ($1::text IS NULL OR a.kind = $1)
              AND (NOT $2 OR (a.acknowledged_at IS NULL
                              AND EXISTS (SELECT 1 FROM sla_clocks c WHERE c.id = a.clock_id AND c.stopped_at IS NULL)))
              AND ($3::text[] IS NULL OR a.unit_code = ANY($3::text[]))
            ORDER BY a.id DESC LIMIT $4""",
        kind, query_bool(request, "open"), await scope_units(pool, user), limit)
    return json_response({"items": [dict(r) for r in rows]})


@requires("supervisor", "admin", "dispatcher")
@api_doc(tags=TAGS, responses={200: "acknowledged", 404: "no such alert"})
async def alert_ack(request: web.Request) -> web.Response:
    """Acknowledge an alert."""
    row = await request.app[RUNTIME].pool.fetchrow(
        "UPDATE sla_alerts SET acknowledged_by = $2, acknowledged_at = coalesce(acknowledged_at, now()) "
        "WHERE id = $1 RETURNING id, acknowledged_at", path_int(request), current_user(request).id)
    if row is None:
        raise NotFound(f"没有预警 {request.match_info['id']}", field="id", value=request.match_info["id"])
    return json_response(dict(row))


@requires()
@api_doc(tags=TAGS, query={"unit": {"type": "string"}, "limit": {"type": "integer"}},
         responses={200: "running clocks past their deadline, most overdue first"})
async def overdue(request: web.Request) -> web.Response:
    """The overdue list (超期清单): running clocks past their deadline, with ticket and unit."""
    user = current_user(request)
    pool = request.app[RUNTIME].pool
    scope = await scope_units(pool, user)
    unit = request.query.get("unit")
    rows = await pool.fetch(
        """SELECT c.ticket_id, c.stage, c.deadline, coalesce(l.unit_code, t.lead_unit_code) AS unit_code,
                  t.number AS ticket_number, t.subject, t.state, now() - c.deadline AS overdue_by
             FROM sla_clocks c JOIN tickets t ON t.id = c.ticket_id LEFT JOIN ticket_legs l ON l.id = c.leg_id
            WHERE c.stopped_at IS NULL AND c.deadline < now()
              AND ($1::text IS NULL OR coalesce(l.unit_code, t.lead_unit_code) = $1)
              AND ($2::text[] IS NULL OR coalesce(l.unit_code, t.lead_unit_code) = ANY($2::text[]))
            ORDER BY c.deadline LIMIT 500""", unit, scope)
    return json_response({"items": [dict(r) for r in rows]})


@requires("admin")
@api_doc(tags=TAGS, responses={200: "how many running clocks were recomputed"})
async def recompute(request: web.Request) -> web.Response:
    """Recompute every running deadline from policy + calendar + history."""
    async with request.app[RUNTIME].pool.acquire() as conn:
        n = await recompute_all(conn, await request.app[RUNTIME].calendars.load(conn),
                                rules=sla_config(request.app[RUNTIME].files))
    return json_response({"clocks_recomputed": n})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/sla/policies", policies)
    app.router.add_post("/api/v1/sla/policies", policy_create)
    app.router.add_patch("/api/v1/sla/policies/{id}", policy_update)
    app.router.add_delete("/api/v1/sla/policies/{id}", policy_delete)
    app.router.add_get("/api/v1/sla/alerts", alerts)
    app.router.add_post("/api/v1/sla/alerts/{id}/ack", alert_ack)
    app.router.add_get("/api/v1/sla/overdue", overdue)
    app.router.add_post("/api/v1/sla/recompute", recompute)
