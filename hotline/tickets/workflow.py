"""Applying an action to a ticket: one transaction that locks the ticket row
(``SELECT ... FOR UPDATE``), looks ``(state, action)`` up in
:data:`hotline.tickets.model.TRANSITIONS`, checks roles and the actor's unit,
applies the action's effects (legs, SLA clocks), updates the state, appends the
history event and publishes ``ticket.changed``. Two concurrent actions on one
ticket queue on the row lock; the second sees the new state and gets 409."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from hotline.auth.model import ROLE_NAMES_ZH, User
from hotline.calendar.core import WorkCalendar
from hotline.calendar.store import CalendarStore, load_calendar
from hotline.config import ConfigFiles
from hotline.errors import Conflict, Forbidden, NotFound, ValidationError
from hotline.sla import clocks
from hotline.sla.config import SlaConfig, sla_config
from hotline.tickets import refusals
from hotline.tickets.catalogue import check_unit
from hotline.tickets.history import append_event, transaction
from hotline.tickets.links import check_attachments, link_call
from hotline.tickets.model import (
    ACTION_NAMES_ZH,
    KINDS,
    SAME,
    STATE_NAMES_ZH,
    TRANSITIONS,
    URGENCIES,
    allowed_actions,
)
from hotline.tickets.refusals import Reason, reasons_for
from hotline.tickets.regions import check_region, suggest_unit
from hotline.tickets.scope import acting_roles, is_unit_only


class IllegalTransition(Conflict):
    code = "illegal_transition"


class DeadlinePassed(Conflict):
    code = "deadline_passed"


class ReturnWindowClosed(Conflict):
    code = "return_window_closed"


class LimitReached(Conflict):
    code = "limit_reached"


@dataclass(slots=True)
class Ctx:
    conn: asyncpg.Connection
    ticket: dict[str, Any]
    action: str
    actor: User | None
    data: dict[str, Any]
    at: datetime
    cal: WorkCalendar
    rules: SlaConfig  # the node's sla.yaml
    reasons: tuple[Reason, ...]  # the node's refusal_reasons.yaml
    note: str = ""
    leg: dict[str, Any] | None = None  # the lead leg (or the actor's assisting leg)
    detail: dict[str, Any] = field(default_factory=dict)
    sets: dict[str, Any] = field(default_factory=dict)  # ticket columns to update
    leg_id: int | None = None


Effect = Callable[[Ctx], Awaitable[None]]


def _text(ctx: Ctx, key: str, what: str, *, required: bool = True, limit: int = 4000) -> str:
    value = ctx.data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{ACTION_NAMES_ZH.get(ctx.action, ctx.action)}须填写{what}（{key}）",
                              field=key, value=value, code="missing_field")
    if len(value) > limit:
        raise ValidationError(f"{what}（{key}）最多 {limit} 个字，收到 {len(value)} 个字", field=key,
                              value=len(value), code="out_of_range")
    return value.strip()


#: the active lead leg: not withdrawn, not passed down, not a finished lower-level leg
#: (the same predicate as the unique index ticket_legs_one_lead_idx)
ACTIVE_LEAD = ("role = 'lead' AND state NOT IN ('withdrawn', 'delegated') "
               "AND (parent_leg_id IS NULL OR state IN ('dispatched', 'signed'))")


async def _lead_leg(conn: asyncpg.Connection, ticket_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT * FROM ticket_legs WHERE ticket_id = $1 AND {ACTIVE_LEAD} FOR UPDATE", ticket_id)  # noqa: S608
    return dict(row) if row else None


async def _new_leg(ctx: Ctx, unit: str, role: str, *, parent: dict[str, Any] | None = None) -> int:
    try:
        leg_id = await ctx.conn.fetchval(
            """INSERT INTO ticket_legs (ticket_id, unit_code, role, dispatched_at, parent_leg_id, level)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""", ctx.ticket["id"], unit, role, ctx.at,
            parent["id"] if parent else None, parent["level"] + 1 if parent else 1)
    except asyncpg.UniqueViolationError:
        raise ValidationError(f"单位 {unit!r} 已在办理工单 {ctx.ticket['id']}", field="assist_units", value=unit,
                              code="unit_already_on_ticket") from None
    return int(leg_id)


def _due_at(ctx: Ctx, key: str = "due_at") -> datetime | None:
    raw = ctx.data.get(key)
    if raw is None:
        return None
    try:
        due = datetime.fromisoformat(str(raw))
    except ValueError:
        raise ValidationError(f"{key} 必须是 ISO 8601 日期时间，收到 {raw!r}", field=key, value=raw,
                              code="invalid_date") from None
    if due.tzinfo is None:
        due = due.replace(tzinfo=ctx.cal.tz)
    if due <= ctx.at:
        raise ValidationError(f"{key} {due.isoformat()} 已是过去的时间", field=key, value=raw, code="in_the_past")
    return due


async def _dispatch_legs(ctx: Ctx) -> None:
    unit = ctx.data.get("unit_code")
    if unit is None:
        # region x category rules, then the category's catalogue unit, then the region's unit
        unit = await suggest_unit(ctx.conn, ctx.ticket["region_code"], ctx.ticket["category_code"])
        if unit is None:
            raise ValidationError("请填写承办单位 unit_code：该工单的属地和分类没有配置默认单位", field="unit_code",
                                  code="missing_field")
    else:
        await check_unit(ctx.conn, unit, "unit_code")
    assists = ctx.data.get("assist_units") or []
    if not isinstance(assists, list):
        raise ValidationError(f"协办单位 assist_units 必须是单位代码的列表，收到 {assists!r}", field="assist_units",
                              value=assists, code="invalid_type")
    for a in assists:
        await check_unit(ctx.conn, a, "assist_units")
    if unit in assists or len(set(assists)) != len(assists):
        raise ValidationError(f"协办单位不能与主办单位 {unit} 相同，也不能重复，收到 {assists!r}",
                              field="assist_units", value=assists, code="duplicate_unit")
    due_at = _due_at(ctx)
    ctx.leg_id = await _new_leg(ctx, unit, "lead")
    to_start = [("sign", ctx.leg_id, unit, None), ("handle", ctx.leg_id, unit, due_at)]
    for a in assists:
        leg = await _new_leg(ctx, a, "assist")
        to_start += [("sign", leg, a, None), ("handle", leg, a, None)]
    await clocks.start_clocks(ctx.conn, ctx.cal, ctx.ticket, ctx.at, to_start, rules=ctx.rules)
    ctx.sets["lead_unit_code"] = unit
    ctx.sets["dispatched_at"] = ctx.ticket["dispatched_at"] or ctx.at
    ctx.detail.update({"unit_code": unit, "assist_units": assists,
                       **({"due_at": due_at.isoformat()} if due_at else {})})


async def close_direct(ctx: Ctx) -> None:
    answer = _text(ctx, "answer", "答复内容（及依据，如知识库条目）")
    ctx.sets.update(close_kind="direct", answer=answer, closed_at=ctx.at)
    kb = ctx.data.get("kb_article_id")
    ctx.detail.update({"answer": answer, **({"kb_article_id": str(kb)} if kb else {})})


async def dispatch(ctx: Ctx) -> None:
    await _dispatch_legs(ctx)


async def sign(ctx: Ctx) -> None:
    assert ctx.leg is not None
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'signed', signed_at = $2 WHERE id = $1",
                           ctx.leg["id"], ctx.at)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["sign"], leg_id=ctx.leg["id"])


def _check_return_window(ctx: Ctx) -> None:
    """A unit returns within the window after its dispatch; later only the centre may
    return the ticket for it (the centre's approval of a late return)."""
    assert ctx.leg is not None
    window_end = ctx.cal.add(ctx.leg["dispatched_at"], ctx.cal.day_length * ctx.rules.return_window_working_days)
    late = ctx.at > window_end
    if late and ctx.actor is not None and is_unit_only(ctx.actor):
        raise ReturnWindowClosed(
            f"退单时限已过：派单后{ctx.rules.return_window_working_days:g}个工作日内可退单"
            f"（截至 {window_end.astimezone(ctx.cal.tz):%Y-%m-%d %H:%M}），逾期退单须经中心批准",
            field="action", window_end=window_end.isoformat())
    ctx.detail["return_window_end"] = window_end.isoformat()
    if late:
        ctx.detail["late_return_approved_by_centre"] = True


async def return_(ctx: Ctx) -> None:
    assert ctx.leg is not None
    if ctx.leg["parent_leg_id"] is not None:
        raise IllegalTransition(f"工单已下派给 {ctx.leg['unit_code']}：请用 return_up（退回上级）退给上级单位",
                                current_state=ctx.ticket["state"])
    reason = _text(ctx, "reason", "退单理由（为何不属本单位职责）")
    _check_return_window(ctx)
    await ctx.conn.execute(
        "UPDATE ticket_legs SET state = 'returned', return_reason = $2, returned_at = $3 WHERE id = $1",
        ctx.leg["id"], reason, ctx.at)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["sign"], leg_id=ctx.leg["id"])
    ctx.sets["returned_count"] = ctx.ticket["returned_count"] + 1
    ctx.detail["reason"] = reason


async def _withdraw_leg(ctx: Ctx, leg: dict[str, Any], *, at: datetime | None = None) -> None:
    """Take a leg off the ticket; its running clocks stop at ``at`` (the return, or
    now): cancelled if still on time, missed if the unit was already late."""
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'withdrawn' WHERE id = $1", leg["id"])
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], at or ctx.at, leg_id=leg["id"], cancel=True)


async def redispatch(ctx: Ctx) -> None:
    assert ctx.leg is not None
    if ctx.data.get("unit_code") == ctx.leg["unit_code"]:
        raise ValidationError(f"单位 {ctx.leg['unit_code']!r} 退回了工单；要退回给它请用 reject_return（不同意退单）",
                              field="unit_code", value=ctx.data.get("unit_code"), code="same_unit")
    await _withdraw_leg(ctx, ctx.leg, at=ctx.leg["returned_at"])
    ctx.detail["from_unit"] = ctx.leg["unit_code"]
    await _dispatch_legs(ctx)


async def _child_units(ctx: Ctx, unit: str) -> list[str]:
    rows = await ctx.conn.fetch("SELECT code FROM units WHERE parent_code = $1 AND active ORDER BY code", unit)
    return [r["code"] for r in rows]


async def subdispatch(ctx: Ctx) -> None:
    """下派: the lead unit passes the ticket to one of its child units. The upper leg
    is delegated (its handle clock keeps running: it still answers for the ticket);
    the lower leg gets its own sign and handle clocks, due no later than the upper's."""
    assert ctx.leg is not None
    unit = await check_unit(ctx.conn, ctx.data.get("unit_code"), "unit_code")
    children = await _child_units(ctx, ctx.leg["unit_code"])
    if unit not in children:
        raise ValidationError(f"{unit!r} 不是 {ctx.leg['unit_code']!r} 的下级单位；其下级单位：{'、'.join(children) or '无'}",
                              field="unit_code", value=unit, code="not_a_child_unit")
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'delegated' WHERE id = $1", ctx.leg["id"])
    parent_deadline = await ctx.conn.fetchval(
        "SELECT deadline FROM sla_clocks WHERE leg_id = $1 AND stage = 'handle' AND stopped_at IS NULL",
        ctx.leg["id"])
    ctx.leg_id = await _new_leg(ctx, unit, "lead", parent=ctx.leg)
    await clocks.start_clocks(ctx.conn, ctx.cal, ctx.ticket, ctx.at,
                              [("sign", ctx.leg_id, unit, None), ("handle", ctx.leg_id, unit, _due_at(ctx))],
                              caps={ctx.leg_id: parent_deadline} if parent_deadline else None, rules=ctx.rules)
    ctx.sets["lead_unit_code"] = unit
    ctx.detail.update(unit_code=unit, from_unit=ctx.leg["unit_code"], level=ctx.leg["level"] + 1)


async def _back_to_parent(ctx: Ctx) -> dict[str, Any]:
    assert ctx.leg is not None
    parent = await ctx.conn.fetchrow("UPDATE ticket_legs SET state = 'signed' WHERE id = $1 RETURNING *",
                                     ctx.leg["parent_leg_id"])
    ctx.sets["lead_unit_code"] = parent["unit_code"]
    ctx.detail["to_unit"] = parent["unit_code"]
    return dict(parent)


def _require_parent(ctx: Ctx, instead: str) -> None:
    assert ctx.leg is not None
    if ctx.leg["parent_leg_id"] is None:
        raise IllegalTransition(f"{ctx.leg['unit_code']} 的工单来自中心：请用 {instead}",
                                current_state=ctx.ticket["state"])


async def reply_up(ctx: Ctx) -> None:
    """回复上级: the lower unit's reply goes to the unit that passed the ticket down,
    which reviews it and replies to the centre (or passes it down again)."""
    assert ctx.leg is not None
    _require_parent(ctx, "reply")
    if ctx.leg["state"] != "signed":
        raise IllegalTransition(f"{ctx.leg['unit_code']} 尚未签收工单", current_state="dispatched")
    text = _text(ctx, "reply", "办理结果（如何办理）")
    basis = _text(ctx, "basis", "答复依据（法规、政策或查明的事实）")
    await ctx.conn.execute(
        "UPDATE ticket_legs SET state = 'replied', reply = $2, reply_basis = $3, replied_at = $4 WHERE id = $1",
        ctx.leg["id"], text, basis, ctx.at)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, leg_id=ctx.leg["id"])
    ctx.detail.update(reply=text, basis=basis, from_unit=ctx.leg["unit_code"])
    await _back_to_parent(ctx)


async def return_up(ctx: Ctx) -> None:
    """退回上级: the lower unit says the ticket is not its matter (within the return
    window); the unit above takes it back and passes it on or handles it."""
    assert ctx.leg is not None
    _require_parent(ctx, "return")
    reason = _text(ctx, "reason", "退单理由（为何不属本单位职责）")
    _check_return_window(ctx)
    await ctx.conn.execute(
        "UPDATE ticket_legs SET state = 'returned', return_reason = $2, returned_at = $3 WHERE id = $1",
        ctx.leg["id"], reason, ctx.at)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["sign"], leg_id=ctx.leg["id"])
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, leg_id=ctx.leg["id"], cancel=True)
    ctx.detail.update(reason=reason, from_unit=ctx.leg["unit_code"])
    await _back_to_parent(ctx)


async def reject_return(ctx: Ctx) -> None:
    assert ctx.leg is not None
    ctx.detail["reason"] = _text(ctx, "reason", "不同意退单的理由")
    await ctx.conn.execute(
        "UPDATE ticket_legs SET state = 'signed', signed_at = coalesce(signed_at, $2) WHERE id = $1",
        ctx.leg["id"], ctx.at)


async def _handle_clock(ctx: Ctx) -> asyncpg.Record | None:
    assert ctx.leg is not None
    return await ctx.conn.fetchrow(
        "SELECT id, deadline FROM sla_clocks WHERE leg_id = $1 AND stage = 'handle' AND stopped_at IS NULL",
        ctx.leg["id"])


def _days(ctx: Ctx, key: str = "days") -> float:
    days = ctx.data.get(key)
    top = ctx.rules.extension_max_days
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= top:
        raise ValidationError(f"延期天数须在 0 到 {top:g} 个工作日之间（{key}={days!r}）", field=key)
    return float(days)


async def _count_on_leg(ctx: Ctx, action: str) -> int:
    assert ctx.leg is not None
    return int(await ctx.conn.fetchval(
        "SELECT count(*) FROM ticket_events WHERE ticket_id = $1 AND leg_id = $2 AND action = $3",
        ctx.ticket["id"], ctx.leg["id"], action))


async def _check_extension_count(ctx: Ctx) -> None:
    done = await _count_on_leg(ctx, "approve_extension")
    if done >= ctx.rules.extension_max_count:
        raise LimitReached(f"本单位已延期{done}次，已达上限（{ctx.rules.extension_max_count}次）",
                           field="action", limit=ctx.rules.extension_max_count)


async def request_extension(ctx: Ctx) -> None:
    days = _days(ctx)
    reason = _text(ctx, "reason", "延期理由")
    await _check_extension_count(ctx)
    clock = await _handle_clock(ctx)
    if clock is not None and clock["deadline"] is not None and ctx.at >= clock["deadline"]:
        raise DeadlinePassed(
            f"办理期限 {clock['deadline'].astimezone(ctx.cal.tz):%Y-%m-%d %H:%M} 已过：延期须在期限之前申请",
            field="days", deadline=clock["deadline"].isoformat())
    ctx.detail.update(days=days, reason=reason)


async def _pending_extension(ctx: Ctx) -> float:
    days = await ctx.conn.fetchval(
        """SELECT (detail->>'days')::float FROM ticket_events WHERE ticket_id = $1 AND action = 'request_extension'
            ORDER BY id DESC LIMIT 1""", ctx.ticket["id"])
    return float(days or 0)


async def approve_extension(ctx: Ctx) -> None:
    assert ctx.leg is not None
    requested = await _pending_extension(ctx)
    await _check_extension_count(ctx)
    days = _days(ctx) if ctx.data.get("days") is not None else requested
    if days > requested:
        raise ValidationError(f"批准的 {days:g} 天多于申请的 {requested:g} 天", field="days", value=days,
                              code="out_of_range")
    minutes = round(ctx.cal.day_length.total_seconds() / 60 * days)
    await ctx.conn.execute("UPDATE ticket_legs SET extension_minutes = extension_minutes + $2 WHERE id = $1",
                           ctx.leg["id"], minutes)
    ctx.sets["extended_count"] = ctx.ticket["extended_count"] + 1
    ctx.detail.update(days=days, requested_days=requested)


async def refuse_extension(ctx: Ctx) -> None:
    ctx.detail["reason"] = _text(ctx, "reason", "不同意延期的理由")


async def request_await(ctx: Ctx) -> None:
    ctx.detail["reason"] = _text(ctx, "reason", "需市民补充的内容")


async def await_citizen(ctx: Ctx) -> None:
    """The centre stops the handling clock while the citizen is awaited (usually on
    the unit's request_await); at most ``await_citizen.max_count`` times per leg, and
    paused time beyond ``max_working_days`` counts again (clocks.cap_pauses)."""
    if ctx.leg is None:
        raise Conflict(f"工单 {ctx.ticket['id']} 没有主办单位", code="no_lead_unit")
    done = await _count_on_leg(ctx, "await_citizen")
    if done >= ctx.rules.await_max_count:
        raise LimitReached(f"本单位已暂停{done}次等待市民补充，已达上限（{ctx.rules.await_max_count}次）",
                           field="action", limit=ctx.rules.await_max_count)
    asked = await ctx.conn.fetchval(
        "SELECT detail->>'reason' FROM ticket_events WHERE ticket_id = $1 AND leg_id = $2 AND action = 'request_await' "
        "ORDER BY id DESC LIMIT 1", ctx.ticket["id"], ctx.leg["id"])
    if ctx.data.get("reason") is None and asked:
        ctx.data["reason"] = asked
    ctx.detail["reason"] = _text(ctx, "reason", "需市民补充的内容")
    ctx.detail["max_working_days"] = ctx.rules.await_max_working_days


async def refuse_await(ctx: Ctx) -> None:
    ctx.detail["reason"] = _text(ctx, "reason", "不同意暂停计时的理由")


async def resume(ctx: Ctx) -> None:
    return None


async def reply(ctx: Ctx) -> None:
    assert ctx.leg is not None
    if ctx.leg["parent_leg_id"] is not None:
        raise IllegalTransition(f"工单已下派给 {ctx.leg['unit_code']}：请用 reply_up（回复上级）答复上级单位",
                                current_state=ctx.ticket["state"])
    text = _text(ctx, "reply", "办理结果（如何办理）")
    basis = _text(ctx, "basis", "答复依据（法规、政策或查明的事实）")
    await ctx.conn.execute(
        "UPDATE ticket_legs SET state = 'replied', reply = $2, reply_basis = $3, replied_at = $4 WHERE id = $1",
        ctx.leg["id"], text, basis, ctx.at)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["handle"], leg_id=ctx.leg["id"])
    await clocks.start_clock(ctx.conn, ctx.cal, ctx.ticket, "reply", ctx.at, rules=ctx.rules)
    ctx.detail.update(reply=text, basis=basis)


async def approve_reply(ctx: Ctx) -> None:
    assert ctx.leg is not None
    ctx.sets["answer"] = ctx.leg["reply"]
    ctx.sets["callback_due_at"] = ctx.at
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["reply"])
    await clocks.start_clock(ctx.conn, ctx.cal, ctx.ticket, "callback", ctx.at, rules=ctx.rules)


async def _reopen_lead(ctx: Ctx) -> None:
    if ctx.leg is None:
        raise IllegalTransition(f"工单 {ctx.ticket['id']} 从未派单（已直接办结）：请新建工单",
                                current_state=ctx.ticket["state"])
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'signed' WHERE id = $1", ctx.leg["id"])
    await clocks.start_clock(ctx.conn, ctx.cal, ctx.ticket, "handle", ctx.at, leg_id=ctx.leg["id"],
                             unit_code=ctx.leg["unit_code"], rules=ctx.rules)
    ctx.sets.update(reopen_count=ctx.ticket["reopen_count"] + 1, closed_at=None, close_kind=None)


async def reopen(ctx: Ctx) -> None:
    ctx.detail["reason"] = _text(ctx, "reason", "重办理由")
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["reply"])
    await _reopen_lead(ctx)
    if ctx.ticket["state"] == "closed":
        # the assisting units and the active lead; lower-level legs that replied up stay closed
        await ctx.conn.execute(
            "UPDATE ticket_legs SET state = 'signed' WHERE ticket_id = $1 AND state = 'closed' "
            "AND (role = 'assist' OR parent_leg_id IS NULL)", ctx.ticket["id"])


def _satisfaction(ctx: Ctx) -> int:
    value = ctx.data.get("satisfaction")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValidationError("满意度 satisfaction 须为 1-5（5 非常满意，4 满意，3 基本满意，2 不满意，1 非常不满意），"
                              f"收到 {value!r}", field="satisfaction", value=value, code="out_of_range")
    return value


#: 回访 records whether the matter was resolved, beside the satisfaction (hotline.reports.rates)
RESOLUTIONS = ("resolved", "partly", "unresolved")


def _resolution(ctx: Ctx) -> str | None:
    value = ctx.data.get("resolution")
    if value is not None and value not in RESOLUTIONS:
        raise ValidationError("解决情况 resolution 须为 resolved（解决）、partly（部分解决）或 unresolved（未解决），"
                              f"收到 {value!r}", field="resolution", value=value, code="invalid_choice")
    return value


async def callback_close(ctx: Ctx) -> None:
    sat = _satisfaction(ctx)
    resolution = _resolution(ctx)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["callback"])
    ctx.sets.update(satisfaction=sat, resolution=resolution, close_kind="completed", closed_at=ctx.at,
                    callback_at=ctx.at)
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'closed' WHERE ticket_id = $1 AND state <> 'withdrawn'",
                           ctx.ticket["id"])
    # one reply, one callback plan: the merged tickets close with their master
    await ctx.conn.execute("UPDATE tickets SET closed_at = $2, satisfaction = $3, resolution = $4, updated_at = now() "
                           "WHERE master_id = $1", ctx.ticket["id"], ctx.at, sat, resolution)
    ctx.detail.update(satisfaction=sat, resolution=resolution, comment=str(ctx.data.get("comment") or "")[:2000])


async def callback_reopen(ctx: Ctx) -> None:
    sat = _satisfaction(ctx)
    resolution = _resolution(ctx)
    ctx.detail.update(satisfaction=sat, resolution=resolution,
                      reason=_text(ctx, "reason", "市民不满意之处"))
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["callback"])
    ctx.sets.update(satisfaction=sat, resolution=resolution, callback_at=ctx.at)
    await _reopen_lead(ctx)


async def supervise(ctx: Ctx) -> None:
    """督办: with a handling unit, a supervision order (督办单) it must answer by a
    reply deadline, on its own clock (stage ``supervise``)."""
    instruction = _text(ctx, "instruction", "督办意见")
    ctx.detail["instruction"] = instruction
    if ctx.leg is None or ctx.ticket["state"] in ("intake", "callback"):
        return  # nobody to answer an order: a note in the history
    due = _due_at(ctx, "reply_due_at")
    if due is None:
        due = ctx.cal.add(ctx.at, ctx.cal.day_length * ctx.rules.supervision_reply_working_days)
    await clocks.start_clock(ctx.conn, ctx.cal, ctx.ticket, "supervise", ctx.at, leg_id=ctx.leg["id"],
                             unit_code=ctx.leg["unit_code"], due_at=due, rules=ctx.rules)
    clock_id = await ctx.conn.fetchval(
        "SELECT max(id) FROM sla_clocks WHERE ticket_id = $1 AND stage = 'supervise' AND stopped_at IS NULL",
        ctx.ticket["id"])
    order_id = await ctx.conn.fetchval(
        """INSERT INTO supervision_orders (ticket_id, leg_id, unit_code, instruction, reply_due_at, clock_id,
                                           created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id""",
        ctx.ticket["id"], ctx.leg["id"], ctx.leg["unit_code"], instruction, due, clock_id,
        ctx.actor.id if ctx.actor else None, ctx.at)
    ctx.detail.update(order_id=order_id, unit_code=ctx.leg["unit_code"], reply_due_at=due.isoformat())


async def supervise_reply(ctx: Ctx) -> None:
    """督办回复: the unit the order went to answers it; the order's clock stops (met or
    missed against the reply deadline)."""
    text = _text(ctx, "reply", "督办回复")
    unit = ctx.actor.unit_code if ctx.actor else None
    order_id = ctx.data.get("order_id")
    if order_id is not None and (isinstance(order_id, bool) or not isinstance(order_id, int)):
        raise ValidationError(f"督办单 order_id 必须是数字，收到 {order_id!r}", field="order_id", value=order_id,
                              code="invalid_type")
    order = await ctx.conn.fetchrow(
        """SELECT * FROM supervision_orders WHERE ticket_id = $1 AND replied_at IS NULL
              AND ($2::bigint IS NULL OR id = $2) AND ($3::text IS NULL OR unit_code = $3)
            ORDER BY id LIMIT 1 FOR UPDATE""", ctx.ticket["id"], order_id, unit)
    if order is None:
        raise NotFound("没有待回复的督办单" + (f"（{order_id}）" if order_id else ""), field="order_id")
    await ctx.conn.execute(
        "UPDATE supervision_orders SET reply = $2, replied_at = $3, replied_by = $4 WHERE id = $1",
        order["id"], text, ctx.at, ctx.actor.id if ctx.actor else None)
    if order["clock_id"] is not None:
        await clocks.stop_clock(ctx.conn, order["clock_id"], ctx.at)
    ctx.leg_id = order["leg_id"]
    ctx.detail.update(order_id=order["id"], reply=text, late=ctx.at > order["reply_due_at"])


async def _ancestors(ctx: Ctx, unit: str) -> list[str]:
    rows = await ctx.conn.fetch(
        """WITH RECURSIVE up(code, depth) AS (SELECT parent_code, 1 FROM units WHERE code = $1
               UNION ALL SELECT u.parent_code, up.depth + 1 FROM units u JOIN up ON u.code = up.code
                WHERE u.parent_code IS NOT NULL AND up.depth < 20)
           SELECT code FROM up WHERE code IS NOT NULL ORDER BY depth""", unit)
    return [r["code"] for r in rows]


async def elevate(ctx: Ctx) -> None:
    """提级办理: the centre moves the ticket to a higher-level unit (by default the
    current lead unit's parent). Every leg of the lead chain is withdrawn, keeping
    its lateness on record; the higher unit gets a new leg with fresh clocks."""
    if ctx.leg is None:
        raise Conflict(f"工单 {ctx.ticket['id']} 没有可提级的主办单位", code="no_lead_unit")
    reason = _text(ctx, "reason", "提级理由")
    above = await _ancestors(ctx, ctx.leg["unit_code"])
    target = ctx.data.get("unit_code")
    if target is None:
        if not above:
            raise ValidationError(f"{ctx.leg['unit_code']!r} 没有上级单位：请填写 unit_code", field="unit_code",
                                  code="missing_field")
        target = above[0]
    target = await check_unit(ctx.conn, target, "unit_code")
    if target not in above:
        raise ValidationError(f"{target!r} 不是 {ctx.leg['unit_code']!r} 的上级单位（其上级：{'、'.join(above) or '无'}）",
                              field="unit_code", value=target, code="not_a_parent_unit")
    chain = await ctx.conn.fetch(
        "SELECT * FROM ticket_legs WHERE ticket_id = $1 AND role = 'lead' "
        "AND state IN ('dispatched', 'signed', 'delegated', 'returned', 'replied') "
        "AND (parent_leg_id IS NULL OR state IN ('dispatched', 'signed', 'delegated')) FOR UPDATE",
        ctx.ticket["id"])
    for leg in chain:
        await _withdraw_leg(ctx, dict(leg), at=leg["returned_at"])
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["reply"])
    ctx.detail.update(reason=reason, from_unit=ctx.leg["unit_code"])
    ctx.data = {"unit_code": target}
    await _dispatch_legs(ctx)


async def _close_without_handling(ctx: Ctx, outcome: str) -> None:
    code = ctx.data.get("reason_code")
    reason = refusals.check_reason(code, outcome, ctx.reasons)
    answer = _text(ctx, "answer", "告知内容")
    ctx.sets.update(close_kind=outcome, refusal_reason=reason.code, answer=answer, closed_at=ctx.at)
    ctx.detail.update(reason_code=reason.code, reason_name=reason.name, answer=answer)


async def refuse(ctx: Ctx) -> None:
    await _close_without_handling(ctx, "refused")


async def transfer_out(ctx: Ctx) -> None:
    await _close_without_handling(ctx, "transferred")


async def urge(ctx: Ctx) -> None:
    ctx.detail["message"] = _text(ctx, "message", "催办内容")


async def merge(ctx: Ctx) -> None:
    master_id = ctx.data.get("master_id")
    if isinstance(master_id, bool) or not isinstance(master_id, int):
        raise ValidationError(f"请填写要并入的工单 master_id，收到 {master_id!r}", field="master_id", value=master_id,
                              code="missing_field")
    if master_id == ctx.ticket["id"]:
        raise ValidationError(f"工单 {master_id} 不能并入自己", field="master_id", value=master_id, code="merge_into_itself")
    master = await ctx.conn.fetchrow("SELECT id, state, master_id FROM tickets WHERE id = $1 FOR UPDATE", master_id)
    if master is None:
        raise ValidationError(f"没有工单 {master_id}", field="master_id", value=master_id, code="unknown_ticket")
    # walk up the master's chain: finding this ticket means a cycle
    seen, cursor = {master_id}, master
    while cursor["master_id"] is not None:
        if cursor["master_id"] == ctx.ticket["id"]:
            raise ValidationError(f"工单 {master_id} 已并入 {ctx.ticket['id']}：再并回去会形成循环", field="master_id",
                                  value=master_id, code="merge_cycle")
        if cursor["master_id"] in seen:
            break
        seen.add(cursor["master_id"])
        cursor = await ctx.conn.fetchrow("SELECT id, state, master_id FROM tickets WHERE id = $1",
                                         cursor["master_id"])
    if master["state"] in ("closed", "merged"):
        raise Conflict(f"工单 {master_id} 状态为 {master['state']}（{STATE_NAMES_ZH[master['state']]}）：只能并入未办结的工单",
                       field="master_id", value=master_id, code="master_closed")
    # tickets already merged into this one follow it to the new master (one level)
    moved = await ctx.conn.fetch("UPDATE tickets SET master_id = $2, updated_at = now() WHERE master_id = $1 "
                                 "RETURNING id", ctx.ticket["id"], master_id)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, any_leg=True, cancel=True)
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'withdrawn' WHERE ticket_id = $1 AND state <> 'withdrawn'",
                           ctx.ticket["id"])
    ctx.sets.update(master_id=master_id, close_kind="merged")
    ctx.detail.update(master_id=master_id, moved=[r["id"] for r in moved])
    await append_event(ctx.conn, master_id, action="merge", from_state=master["state"], to_state=master["state"],
                       actor_id=ctx.actor.id if ctx.actor else None,
                       actor_name=ctx.actor.display_name if ctx.actor else "", at=ctx.at,
                       note=f"并入工单 {ctx.ticket['id']}", detail={"merged_id": ctx.ticket["id"]})


async def link_call_(ctx: Ctx) -> None:
    call_id = ctx.data.get("call_id")
    if isinstance(call_id, bool) or not isinstance(call_id, int) or not await ctx.conn.fetchval(
            "SELECT true FROM calls WHERE id = $1", call_id):
        raise ValidationError(f"来电 {call_id!r} 不存在", field="call_id", value=call_id, code="unknown_call")
    await link_call(ctx.conn, ctx.ticket["id"], call_id)
    ctx.detail["call_id"] = call_id


_EDITABLE = {"subject", "facts", "location", "occurred_at", "caller_name", "contact_number", "category_code",
             "kind", "urgency", "confidential", "attachments", "region_code"}


async def update(ctx: Ctx) -> None:
    changes = ctx.data.get("changes")
    if not isinstance(changes, dict) or not changes:
        raise ValidationError(f"changes 必须是包含以下字段的对象：{'、'.join(sorted(_EDITABLE))}；收到 {changes!r}",
                              field="changes", value=changes, code="invalid_type")
    unknown = set(changes) - _EDITABLE
    if unknown:
        raise ValidationError(f"不能修改 {'、'.join(sorted(unknown))}", field=sorted(unknown)[0], value=sorted(unknown),
                              code="unknown_field")
    c = dict(changes)
    if "kind" in c and c["kind"] not in KINDS:
        raise ValidationError(f"诉求类型 kind 必须是 {'、'.join(KINDS)} 之一，收到 {c['kind']!r}", field="kind",
                              value=c["kind"], code="invalid_choice")
    if "urgency" in c and c["urgency"] not in URGENCIES:
        raise ValidationError(f"缓急程度 urgency 必须是 {'、'.join(URGENCIES)} 之一，收到 {c['urgency']!r}",
                              field="urgency", value=c["urgency"], code="invalid_choice")
    if "category_code" in c and not await ctx.conn.fetchval(
            "SELECT active FROM ticket_categories WHERE code = $1", c["category_code"]):
        raise ValidationError(f"未知或已停用的诉求分类 {c['category_code']!r}", field="category_code",
                              value=c["category_code"], code="unknown_category")
    if "subject" in c and (not isinstance(c["subject"], str) or not 1 <= len(c["subject"].strip()) <= 200):
        raise ValidationError(f"诉求事项 subject 须为 1-200 个字，收到 {c['subject']!r}", field="subject",
                              value=c["subject"], code="out_of_range")
    if "confidential" in c and not isinstance(c["confidential"], bool):
        raise ValidationError(f"confidential 必须是 true 或 false，收到 {c['confidential']!r}", field="confidential",
                              value=c["confidential"], code="invalid_type")
    if "attachments" in c:
        c["attachments"] = check_attachments(c["attachments"])
    if "region_code" in c:
        c["region_code"] = await check_region(ctx.conn, c["region_code"])
    if "occurred_at" in c and c["occurred_at"] is not None:
        try:
            c["occurred_at"] = datetime.fromisoformat(str(c["occurred_at"]))
        except ValueError:
            raise ValidationError(f"事发时间 occurred_at 必须是 ISO 8601 时间，收到 {c['occurred_at']!r}",
                                  field="occurred_at", value=c["occurred_at"], code="invalid_format") from None
    if "contact_number" in c:
        from hotline.phone import normalize

        c["contact_number"] = normalize(str(c["contact_number"] or "")).number
    ctx.sets.update(c)
    ctx.detail["changed"] = sorted(c)


async def assist_sign(ctx: Ctx) -> None:
    assert ctx.leg is not None
    if ctx.leg["state"] != "dispatched":
        raise IllegalTransition(f"{ctx.leg['unit_code']} 的协办状态为 {ctx.leg['state']}，不是待签收",
                                current_state=ctx.ticket["state"])
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'signed', signed_at = $2 WHERE id = $1",
                           ctx.leg["id"], ctx.at)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["sign"], leg_id=ctx.leg["id"])


async def assist_reply(ctx: Ctx) -> None:
    assert ctx.leg is not None
    if ctx.leg["state"] not in ("dispatched", "signed"):
        raise IllegalTransition(f"{ctx.leg['unit_code']} 的协办状态为 {ctx.leg['state']}，不能答复",
                                current_state=ctx.ticket["state"])
    text = _text(ctx, "reply", "协办意见")
    await ctx.conn.execute(
        "UPDATE ticket_legs SET state = 'replied', reply = $2, replied_at = $3, signed_at = coalesce(signed_at, $3) "
        "WHERE id = $1", ctx.leg["id"], text, ctx.at)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["sign", "handle"], leg_id=ctx.leg["id"])
    ctx.detail["reply"] = text


async def add_assist(ctx: Ctx) -> None:
    unit = await check_unit(ctx.conn, ctx.data.get("unit_code"), "unit_code")
    if unit == ctx.ticket["lead_unit_code"]:
        raise ValidationError(f"{unit!r} 是主办单位，不能同时协办", field="unit_code", value=unit, code="same_unit")
    ctx.leg_id = await _new_leg(ctx, unit, "assist")
    await clocks.start_clocks(ctx.conn, ctx.cal, ctx.ticket, ctx.at,
                              [("sign", ctx.leg_id, unit, None), ("handle", ctx.leg_id, unit, None)], rules=ctx.rules)
    ctx.detail["unit_code"] = unit


EFFECTS: dict[str, Effect] = {
    "close_direct": close_direct, "dispatch": dispatch, "sign": sign, "return": return_,
    "redispatch": redispatch, "reject_return": reject_return, "request_extension": request_extension,
    "approve_extension": approve_extension, "refuse_extension": refuse_extension,
    "await_citizen": await_citizen, "resume": resume, "reply": reply, "approve_reply": approve_reply,
    "reopen": reopen, "callback_close": callback_close, "callback_reopen": callback_reopen,
    "supervise": supervise, "urge": urge, "merge": merge, "link_call": link_call_, "update": update,
    "assist_sign": assist_sign, "assist_reply": assist_reply, "add_assist": add_assist,
    "subdispatch": subdispatch, "reply_up": reply_up, "return_up": return_up, "request_await": request_await,
    "refuse_await": refuse_await, "refuse": refuse, "transfer_out": transfer_out,
    "supervise_reply": supervise_reply, "elevate": elevate,
}
assert {a for (_, a) in TRANSITIONS} == set(EFFECTS), "every action in the table needs an effect"


def _roles_zh(roles: Iterable[str]) -> str:
    return "、".join(ROLE_NAMES_ZH.get(r, r) for r in sorted(roles))


async def _check_actor(ctx: Ctx, unit_leg: str | None, roles: frozenset[str]) -> None:
    actor = ctx.actor
    if actor is None:
        return  # the system itself (jobs, imports)
    acting = acting_roles(actor)  # a district's dispatcher acts for its unit, not for the centre
    if not acting & roles:
        raise Forbidden(f"{ACTION_NAMES_ZH.get(ctx.action, ctx.action)}需要以下角色之一：{_roles_zh(roles)}；"
                        f"您的角色：{_roles_zh(acting) or '无'}", required=sorted(roles))
    if unit_leg is None:
        return
    centre_may = bool(acting & (roles - {"liaison"}))
    if unit_leg == "lead":
        if ctx.leg is None:
            raise Conflict(f"工单 {ctx.ticket['id']} 没有主办单位", code="no_lead_unit")
        if centre_may and "liaison" not in acting:
            return
        if actor.unit_code != ctx.leg["unit_code"]:
            raise Forbidden(f"只有主办单位 {ctx.leg['unit_code']!r} 的联络员可以对工单 {ctx.ticket['id']} "
                            f"{ACTION_NAMES_ZH.get(ctx.action, ctx.action)}")
    else:
        row = await ctx.conn.fetchrow(
            "SELECT * FROM ticket_legs WHERE ticket_id = $1 AND role = 'assist' AND unit_code = $2 "
            "AND state <> 'withdrawn' FOR UPDATE", ctx.ticket["id"], actor.unit_code)
        if row is None:
            raise Forbidden(f"您的单位 {actor.unit_code!r} 不是工单 {ctx.ticket['id']} 的协办单位")
        ctx.leg = dict(row)


_NEEDS_LEAD = frozenset({"redispatch", "reject_return", "approve_extension", "refuse_extension", "approve_reply",
                         "reopen", "callback_reopen", "callback_close", "await_citizen", "refuse_await",
                         "supervise", "elevate"})


async def apply(
    conn: asyncpg.Connection,
    ticket_id: int,
    action: str,
    actor: User | None,
    data: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
    calendars: CalendarStore | None = None,
    files: ConfigFiles | None = None,
) -> dict[str, Any]:
    """Apply ``action`` to the ticket in one transaction; returns
    ``{ticket_id, from_state, state, event_id}``. Raises IllegalTransition (409)
    naming the current state and the allowed actions, Forbidden, ValidationError.
    ``calendars`` and ``files`` are the node's (``runtime.calendars``; ``runtime.files``:
    ``sla.yaml`` and ``refusal_reasons.yaml`` from its ``config_dir``); without them, the
    database's calendar and the packaged files."""
    data = data or {}
    async with transaction(conn):
        if action == "merge" and isinstance(data.get("master_id"), int) and not isinstance(data["master_id"], bool):
            # lock both tickets in id order so that two crossing merges cannot deadlock
            await conn.execute("SELECT id FROM tickets WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
                               [ticket_id, data["master_id"]])
        row = await conn.fetchrow(
            """SELECT t.*, now() AS db_now, current_database() AS db_name,
                      (SELECT version FROM calendar_version WHERE id = 1) AS calendar_version
                 FROM tickets t WHERE t.id = $1 FOR UPDATE OF t""", ticket_id)
        if row is None:
            raise NotFound(f"没有工单 {ticket_id}", field="id", value=ticket_id)
        ticket = dict(row)
        db_now, version = ticket.pop("db_now"), (ticket.pop("db_name"), ticket.pop("calendar_version"))
        state = ticket["state"]
        rule = TRANSITIONS.get((state, action))
        if rule is None:
            allowed = allowed_actions(state, acting_roles(actor) if actor else None)
            if action not in EFFECTS:
                raise ValidationError(f"未知的操作 {action!r}", field="action", value=action, code="unknown_action",
                                      allowed_actions=allowed)
            raise IllegalTransition(
                f"工单 {ticket_id} 状态为 {state}（{STATE_NAMES_ZH[state]}），不能{ACTION_NAMES_ZH.get(action, action)}"
                f"（{action}）；可做的操作：{', '.join(allowed) or '无'}",
                current_state=state, allowed_actions=allowed)
        now = at or db_now
        cal = await (calendars.load(conn, version=version) if calendars else load_calendar(conn, version=version))
        ctx = Ctx(conn, ticket, action, actor, dict(data), now, cal, sla_config(files), reasons_for(files))
        ctx.note = str(data.get("note") or "")[:4000]
        if rule.unit_leg == "lead" or action in _NEEDS_LEAD:
            ctx.leg = await _lead_leg(conn, ticket_id)
        await _check_actor(ctx, rule.unit_leg, rule.roles)
        await EFFECTS[action](ctx)
        new_state = state if rule.to == SAME else rule.to
        ctx.sets["state"] = new_state
        cols = sorted(ctx.sets)
        await conn.execute(
            f"UPDATE tickets SET {', '.join(f'{c} = ${i + 2}' for i, c in enumerate(cols))}, "  # noqa: S608
            f"updated_at = ${len(cols) + 2} WHERE id = $1",
            ticket_id, *[ctx.sets[c] for c in cols], now)
        event_id = await append_event(
            conn, ticket_id, action=action, from_state=state, to_state=new_state,
            actor_id=actor.id if actor else None, actor_name=actor.display_name if actor else "系统",
            note=ctx.note, leg_id=ctx.leg_id or (ctx.leg["id"] if ctx.leg else None), detail=ctx.detail, at=now,
            unit_code=ctx.sets.get("lead_unit_code", ticket["lead_unit_code"]))
        if action in ("await_citizen", "resume", "approve_extension", "update"):
            await clocks.recompute(conn, ctx.cal, ticket_ids=[ticket_id], rules=ctx.rules)
        return {"ticket_id": ticket_id, "from_state": state, "state": new_state, "event_id": event_id}

