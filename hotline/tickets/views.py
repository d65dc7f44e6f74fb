"""What a user may see of tickets: visibility (a unit liaison sees only tickets
where its unit has a leg), masking (numbers masked unless revealed; caller
identity withheld from units on confidential tickets) and the audit of every
unmasked view."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from hotline.auth import audit
from hotline.auth.model import User
from hotline.errors import Forbidden, NotFound, ValidationError
from hotline.phone import mask
from hotline.reports.rates import RESOLUTION_ZH
from hotline.tickets.model import (
    ACTION_NAMES_ZH,
    CLOSE_KIND_NAMES_ZH,
    KIND_NAMES_ZH,
    OPEN_STATES,
    SATISFACTION_ZH,
    STATE_NAMES_ZH,
    allowed_actions,
)
from hotline.tickets.scope import CENTRE_ROLES, acting_roles, is_unit_only, scope_units

__all__ = ["CENTRE_ROLES", "is_unit_only", "scope_units"]

WITHHELD = "（保密）"
SLA_STATE_NAMES_ZH = {"overdue": "已超期", "warning": "临期", "paused": "暂停计时", "normal": "正常", "none": "无时限"}

#: the server's one verdict on a ticket's running clocks (the console colours by it;
#: the supervisor's at-risk list reads the same facts): overdue when a running clock
#: is past its deadline, warning when the scan has fired a warning level of one
#: (fired > 0), paused while a clock waits on the citizen, normal otherwise
SLA_STATE_SQL = """(SELECT CASE WHEN count(*) = 0 THEN 'none'
                               WHEN bool_or(c.overdue OR c.deadline < now()) THEN 'overdue'
                               WHEN bool_or(c.fired > 0) THEN 'warning'
                               WHEN bool_or(c.deadline IS NULL) THEN 'paused'
                               ELSE 'normal' END
                      FROM sla_clocks c WHERE c.ticket_id = t.id AND c.stopped_at IS NULL
                       AND c.stage IN ('sign', 'handle'))"""


async def _visible(conn: asyncpg.Connection | asyncpg.Pool, ticket_id: int, user: User) -> bool:
    units = await scope_units(conn, user)
    if units is None:
        return True
    return bool(await conn.fetchval(
        "SELECT true FROM ticket_legs WHERE ticket_id = $1 AND unit_code = ANY($2::text[]) AND state <> 'withdrawn'",
        ticket_id, units))


def _caller(row: Any, user: User, reveal: bool) -> dict[str, Any]:
    hidden = bool(row["confidential"]) and is_unit_only(user)
    if hidden:
        return {"name": WITHHELD, "number": WITHHELD, "contact_number": WITHHELD, "masked": True, "withheld": True}
    return {
        "name": row["caller_name"],
        "number": row["caller_number"] if reveal else mask(row["caller_number"]),
        "contact_number": row["contact_number"] if reveal else mask(row["contact_number"]),
        "masked": not reveal,
        "withheld": False,
    }


def summary(row: Any, user: User) -> dict[str, Any]:
    return {
        "id": row["id"], "number": row["number"], "state": row["state"], "state_name": STATE_NAMES_ZH[row["state"]],
        "hotline_number": row["hotline_number"], "channel": row["channel"], "kind": row["kind"],
        "kind_name": KIND_NAMES_ZH[row["kind"]], "category_code": row["category_code"], "urgency": row["urgency"],
        "subject": row["subject"], "lead_unit_code": row["lead_unit_code"], "confidential": row["confidential"],
        "caller": _caller(row, user, reveal=False), "master_id": row["master_id"],
        "created_at": row["created_at"], "updated_at": row["updated_at"], "closed_at": row["closed_at"],
        "deadline": row.get("deadline") if hasattr(row, "get") else None,
        "overdue": bool(row.get("overdue")) if hasattr(row, "get") else False,
        "region_code": row["region_code"], "region_name": _get(row, "region_name"),
        "lead_unit_name": _get(row, "lead_unit_name"),
        "sla_state": _get(row, "sla_state") or "none",
        "sla_state_name": SLA_STATE_NAMES_ZH[_get(row, "sla_state") or "none"],
        "close_kind": row["close_kind"], "close_kind_name": CLOSE_KIND_NAMES_ZH.get(row["close_kind"] or "", ""),
        "refusal_reason": row["refusal_reason"],
    }


def _get(row: Any, key: str) -> Any:
    try:
        return row[key]
    except KeyError:
        return None


async def ticket_view(conn: asyncpg.Connection, ticket_id: int, user: User, *, reveal: bool = False,
                      remote_addr: str | None = None) -> dict[str, Any]:
    row = await conn.fetchrow(
        """SELECT t.*,
                  (SELECT coalesce(json_agg(json_build_object(
                          'id', l.id, 'unit_code', l.unit_code, 'unit_name', u.name, 'role', l.role,
                          'state', l.state, 'dispatched_at', l.dispatched_at, 'signed_at', l.signed_at,
                          'replied_at', l.replied_at, 'return_reason', l.return_reason, 'reply', l.reply,
                          'reply_basis', l.reply_basis, 'extension_minutes', l.extension_minutes,
                          'parent_leg_id', l.parent_leg_id, 'level', l.level, 'returned_at', l.returned_at)
                          ORDER BY l.id), '[]')
                     FROM ticket_legs l JOIN units u ON u.code = l.unit_code WHERE l.ticket_id = t.id) AS legs,
                  (SELECT coalesce(json_agg(json_build_object(
                          'id', c.id, 'leg_id', c.leg_id, 'stage', c.stage, 'unit_code', c.unit_code,
                          'started_at', c.started_at, 'deadline', c.deadline, 'overdue', c.overdue,
                          'fired', c.fired, 'natural_time', c.natural_time,
                          'budget_hours', extract(epoch FROM c.budget) / 3600,
                          -- the instant the clock turns 临期: its highest alert level under 100 %,
                          -- reached in working time on the calendar (the console never guesses it)
                          'warn_at', (SELECT x.m FROM unnest(c.levels, c.marks) AS x(l, m)
                                       WHERE x.l < 100 ORDER BY x.l DESC LIMIT 1)) ORDER BY c.id), '[]')
                     FROM sla_clocks c WHERE c.ticket_id = t.id AND c.stopped_at IS NULL) AS clocks,
                  (SELECT coalesce(json_agg(json_build_object(
                          'id', o.id, 'unit_code', o.unit_code, 'instruction', o.instruction,
                          'reply_due_at', o.reply_due_at, 'reply', o.reply, 'replied_at', o.replied_at,
                          'created_at', o.created_at) ORDER BY o.id), '[]')
                     FROM supervision_orders o WHERE o.ticket_id = t.id) AS supervision_orders,
                  ARRAY(SELECT call_id FROM ticket_calls WHERE ticket_id = t.id ORDER BY linked_at) AS call_ids,
                  ARRAY(SELECT id FROM tickets m WHERE m.master_id = t.id ORDER BY id) AS merged_ids,
                  r.name AS region_name, lu.name AS lead_unit_name, """ + SLA_STATE_SQL + """ AS sla_state,
                  ($2::text[] IS NULL OR EXISTS (SELECT 1 FROM ticket_legs v WHERE v.ticket_id = t.id
                                               AND v.unit_code = ANY($2::text[]) AND v.state <> 'withdrawn')) AS visible
             FROM tickets t LEFT JOIN regions r ON r.code = t.region_code
             LEFT JOIN units lu ON lu.code = t.lead_unit_code WHERE t.id = $1""",  # noqa: S608 (constant SQL)
        ticket_id, await scope_units(conn, user))
    if row is None or not row["visible"]:
        raise NotFound(f"没有工单 {ticket_id}", field="id", value=ticket_id)  # not 403: do not confirm it exists
    if reveal and row["confidential"] and is_unit_only(user):
        raise Forbidden("保密工单的诉求人信息不向承办单位显示", field="reveal", code="confidential")
    out = summary(row, user)
    out.update(
        facts=row["facts"], location=row["location"], occurred_at=row["occurred_at"], source=row["source"],
        caller=_caller(row, user, reveal), attachments=row["attachments"], close_kind=row["close_kind"],
        answer=row["answer"], satisfaction=row["satisfaction"],
        satisfaction_name=SATISFACTION_ZH.get(row["satisfaction"]) if row["satisfaction"] else None,
        resolution=row["resolution"], resolution_name=RESOLUTION_ZH.get(row["resolution"] or ""),
        reopen_count=row["reopen_count"], legs=row["legs"], clocks=row["clocks"],
        call_ids=list(row["call_ids"]), merged_ids=list(row["merged_ids"]),
        supervision_orders=row["supervision_orders"],
        allowed_actions=allowed_actions(row["state"], acting_roles(user)),
    )
    if reveal:
        await audit(conn, "ticket_contact_viewed", user=user, object_type="ticket", object_id=ticket_id,
                    detail={"confidential": row["confidential"]}, remote_addr=remote_addr)
    return out


async def list_tickets(conn: asyncpg.Connection | asyncpg.Pool, user: User, *, state: str | None = None,
                       open_only: bool = False, unit_code: str | None = None, hotline_number: str | None = None,
                       caller_number: str | None = None, overdue: bool | None = None,
                       created_from: datetime | None = None, created_to: datetime | None = None,
                       before_id: int | None = None, limit: int = 50,
                       caller_pattern: str | None = None) -> list[dict[str, Any]]:
    """``caller_number`` matches exactly; ``caller_pattern`` is a LIKE pattern (a masked number)."""
    if state is not None and state not in STATE_NAMES_ZH:
        raise ValidationError(f"参数 state 必须是 {'、'.join(STATE_NAMES_ZH)} 之一，收到 {state!r}", field="state",
                              value=state, code="invalid_choice")
    if (caller_number or caller_pattern) and is_unit_only(user):
        raise Forbidden("承办单位不能按来电号码查询工单", field="caller", code="caller_search_forbidden")
    scope = await scope_units(conn, user)
    rows = await conn.fetch(
        """SELECT t.*, d.deadline, d.overdue, r.name AS region_name, lu.name AS lead_unit_name,
                  """ + SLA_STATE_SQL + """ AS sla_state FROM tickets t
             LEFT JOIN LATERAL (SELECT min(deadline) AS deadline, bool_or(overdue OR deadline < now()) AS overdue
                                  FROM sla_clocks c
                                 WHERE c.ticket_id = t.id AND c.stopped_at IS NULL
                                   AND c.stage IN ('sign', 'handle')) d ON true
             LEFT JOIN regions r ON r.code = t.region_code
             LEFT JOIN units lu ON lu.code = t.lead_unit_code
            WHERE ($1::text IS NULL OR t.state = $1)
              AND (NOT $2 OR t.state = ANY($3::text[]))
              AND ($4::text[] IS NULL OR EXISTS (SELECT 1 FROM ticket_legs l WHERE l.ticket_id = t.id
                                               AND l.unit_code = ANY($4::text[]) AND l.state <> 'withdrawn'))
              AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM ticket_legs l WHERE l.ticket_id = t.id
                                               AND l.unit_code = $5 AND l.state <> 'withdrawn'))
              AND ($6::text IS NULL OR t.hotline_number = $6)
              AND ($7::text IS NULL OR t.caller_number = $7)
              AND ($8::boolean IS NULL OR coalesce(d.overdue, false) = $8)
              AND ($9::timestamptz IS NULL OR t.created_at >= $9)
              AND ($10::timestamptz IS NULL OR t.created_at < $10)
              AND ($11::bigint IS NULL OR t.id < $11)
              AND ($13::text IS NULL OR t.caller_number LIKE $13)
            ORDER BY t.id DESC LIMIT $12""",  # noqa: S608 (constant SQL)
        state, open_only, sorted(OPEN_STATES), scope, unit_code, hotline_number, caller_number, overdue,
        created_from, created_to, before_id, limit, caller_pattern)
    return [summary(r, user) for r in rows]


async def history(conn: asyncpg.Connection | asyncpg.Pool, ticket_id: int, user: User) -> list[dict[str, Any]]:
    if not await conn.fetchval("SELECT true FROM tickets WHERE id = $1", ticket_id) or not await _visible(
            conn, ticket_id, user):
        raise NotFound(f"没有工单 {ticket_id}", field="id", value=ticket_id)
    rows = await conn.fetch(
        """SELECT e.id, e.at, e.actor_id, e.actor_name, e.action, e.from_state, e.to_state, e.note, e.detail,
                  e.leg_id, l.unit_code, u.name AS unit_name
             FROM ticket_events e LEFT JOIN ticket_legs l ON l.id = e.leg_id LEFT JOIN units u ON u.code = l.unit_code
            WHERE e.ticket_id = $1 ORDER BY e.id""", ticket_id)
    return [{**dict(r), "action_name": ACTION_NAMES_ZH.get(r["action"], r["action"]),
             "from_state_name": STATE_NAMES_ZH.get(r["from_state"] or "", ""),
             "to_state_name": STATE_NAMES_ZH.get(r["to_state"], r["to_state"]),
             "summary": describe_event(r["action"], r["detail"] or {})} for r in rows]


#: what a history event's detail shows a reviewer, in this order: (detail key, the action
#: the line belongs to or None for any, how it reads). A line for any action needs a
#: non-empty value; an action's own line (the extension days) shows any value given.
_EVENT_DETAILS: tuple[tuple[str, str | None, Callable[[Any, dict[str, Any]], str]], ...] = (
    ("reason", None, lambda v, d: f"理由：{v}"),
    ("days", "request_extension", lambda v, d: f"申请延期{v:g}个工作日"),
    ("days", "approve_extension", lambda v, d: f"批准延期{v:g}个工作日（申请{d.get('requested_days', v):g}个）"),
    ("reply", None, lambda v, d: f"答复：{v}"),
    ("basis", None, lambda v, d: f"依据：{v}"),
    ("satisfaction", None, lambda v, d: f"满意度：{SATISFACTION_ZH.get(v, '')}"),
    ("resolution", None, lambda v, d: f"解决情况：{RESOLUTION_ZH.get(v, '')}"),
    ("instruction", None, lambda v, d: f"督办意见：{v}"),
    ("message", None, lambda v, d: f"催办内容：{v}"),
    ("reason_name", None, lambda v, d: f"原因：{v}"),
    ("answer", None, lambda v, d: f"告知：{v}"),
    ("late_return_approved_by_centre", None, lambda v, d: "逾期退单（经中心批准）"),
    ("comment", None, lambda v, d: f"市民意见：{v}"),
)


def describe_event(action: str, detail: dict[str, Any]) -> str:
    """The details of a history event as a reviewer reads them (in Chinese, no codes)."""
    return "；".join(
        show(detail[key], detail) for key, only, show in _EVENT_DETAILS
        if (detail.get(key) is not None if only == action else only is None and detail.get(key)))


async def callback_plan(conn: asyncpg.Connection, ticket_id: int, user: User, *,
                        remote_addr: str | None = None) -> dict[str, Any]:
    """Everyone to call back for a ticket: its caller and the callers of every ticket
    merged into it (one reply and one callback plan reach every caller)."""
    row = await conn.fetchrow("SELECT id, master_id, state, answer FROM tickets WHERE id = $1", ticket_id)
    if row is None:
        raise NotFound(f"没有工单 {ticket_id}", field="id", value=ticket_id)
    master_id = row["master_id"] or ticket_id
    people = await conn.fetch(
        """SELECT id AS ticket_id, number AS ticket_number, caller_name, coalesce(nullif(contact_number, ''), caller_number) AS number,
                  confidential FROM tickets WHERE id = $1 OR master_id = $1 ORDER BY id""", master_id)
    master = await conn.fetchrow("SELECT state, answer FROM tickets WHERE id = $1", master_id)
    await audit(conn, "ticket_callback_plan_viewed", user=user, object_type="ticket", object_id=master_id,
                remote_addr=remote_addr)
    return {"master_id": master_id, "state": master["state"], "answer": master["answer"],
            "callers": [dict(p) for p in people]}
