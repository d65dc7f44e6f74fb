"""Applying an action to a ticket: one transaction that locks the ticket row
(``SELECT ... FOR UPDATE``), looks ``(state, action)`` up in
:data:`hotline.tickets.model.TRANSITIONS`, checks roles and the actor's unit,
applies the action's effects (legs, SLA clocks), updates the state, appends the
history event and publishes ``ticket.changed``. Two concurrent actions on one
ticket queue on the row lock; the second sees the new state and gets 409."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from hotline.auth.model import User
from hotline.calendar.core import WorkCalendar
from hotline.calendar.store import CalendarStore, load_calendar
from hotline.errors import Conflict, Forbidden, NotFound, ValidationError
from hotline.sla import clocks
from hotline.sla.config import SlaConfig, load_sla_config
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
    rules: SlaConfig
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
        raise ValidationError(f"{what} is required for {ctx.action} ({ACTION_NAMES_ZH.get(ctx.action, '')})",
                              field=key)
    if len(value) > limit:
        raise ValidationError(f"{key} must be at most {limit} characters", field=key)
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
        raise ValidationError(f"unit {unit!r} already has a leg on ticket {ctx.ticket['id']}",
                              field="assist_units") from None
    return int(leg_id)


def _due_at(ctx: Ctx, key: str = "due_at") -> datetime | None:
    raw = ctx.data.get(key)
    if raw is None:
        return None
    try:
        due = datetime.fromisoformat(str(raw))
    except ValueError:
        raise ValidationError(f"{key} {raw!r} is not an ISO 8601 date-time", field=key) from None
    if due.tzinfo is None:
        due = due.replace(tzinfo=ctx.cal.tz)
    if due <= ctx.at:
        raise ValidationError(f"{key} {due.isoformat()} is in the past", field=key)
    return due


async def _dispatch_legs(ctx: Ctx) -> None:
    unit = ctx.data.get("unit_code")
    if unit is None:
        # region x category rules, then the category's catalogue unit, then the region's unit
        unit = await suggest_unit(ctx.conn, ctx.ticket["region_code"], ctx.ticket["category_code"])
        if unit is None:
            raise ValidationError("unit_code is required: no unit is configured for the ticket's region "
                                  "and category", field="unit_code")
    else:
        await check_unit(ctx.conn, unit, "unit_code")
    assists = ctx.data.get("assist_units") or []
    if not isinstance(assists, list):
        raise ValidationError("assist_units must be a list of unit codes", field="assist_units")
    for a in assists:
        await check_unit(ctx.conn, a, "assist_units")
    if unit in assists or len(set(assists)) != len(assists):
        raise ValidationError("assisting units must differ from the lead unit and from each other",
                              field="assist_units")
    due_at = _due_at(ctx)
    ctx.leg_id = await _new_leg(ctx, unit, "lead")
    to_start = [("sign", ctx.leg_id, unit, None), ("handle", ctx.leg_id, unit, due_at)]
    for a in assists:
        leg = await _new_leg(ctx, a, "assist")
        to_start += [("sign", leg, a, None), ("handle", leg, a, None)]
    await clocks.start_clocks(ctx.conn, ctx.cal, ctx.ticket, ctx.at, to_start)
    ctx.sets["lead_unit_code"] = unit
    ctx.sets["dispatched_at"] = ctx.ticket["dispatched_at"] or ctx.at
    ctx.detail.update({"unit_code": unit, "assist_units": assists,
                       **({"due_at": due_at.isoformat()} if due_at else {})})


async def close_direct(ctx: Ctx) -> None:
    answer = _text(ctx, "answer", "the answer given (with its basis, e.g. the knowledge-base article)")
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
        raise IllegalTransition(f"the ticket was passed down to {ctx.leg['unit_code']}: return it to the unit "
                                "above with return_up (退回上级)", current_state=ctx.ticket["state"])
    reason = _text(ctx, "reason", "a reason (why the ticket is not this unit's matter)")
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
        raise ValidationError(f"unit {ctx.leg['unit_code']!r} returned the ticket; to send it back there "
                              "use reject_return", field="unit_code")
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
        raise ValidationError(f"{unit!r} is not a unit under {ctx.leg['unit_code']!r}; its units: "
                              f"{', '.join(children) or 'none'}", field="unit_code")
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'delegated' WHERE id = $1", ctx.leg["id"])
    parent_deadline = await ctx.conn.fetchval(
        "SELECT deadline FROM sla_clocks WHERE leg_id = $1 AND stage = 'handle' AND stopped_at IS NULL",
        ctx.leg["id"])
    ctx.leg_id = await _new_leg(ctx, unit, "lead", parent=ctx.leg)
    await clocks.start_clocks(ctx.conn, ctx.cal, ctx.ticket, ctx.at,
                              [("sign", ctx.leg_id, unit, None), ("handle", ctx.leg_id, unit, _due_at(ctx))],
                              caps={ctx.leg_id: parent_deadline} if parent_deadline else None)
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
        raise IllegalTransition(f"{ctx.leg['unit_code']} received the ticket from the centre: use {instead}",
                                current_state=ctx.ticket["state"])


async def reply_up(ctx: Ctx) -> None:
    """回复上级: the lower unit's reply goes to the unit that passed the ticket down,
    which reviews it and replies to the centre (or passes it down again)."""
    assert ctx.leg is not None
    _require_parent(ctx, "reply")
    if ctx.leg["state"] != "signed":
        raise IllegalTransition(f"{ctx.leg['unit_code']} has not signed for the ticket", current_state="dispatched")
    text = _text(ctx, "reply", "the reply (how the matter was handled)")
    basis = _text(ctx, "basis", "the basis of the reply (law, policy or facts found)")
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
    reason = _text(ctx, "reason", "a reason (why the ticket is not this unit's matter)")
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
    ctx.detail["reason"] = _text(ctx, "reason", "why the return is refused")
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
    reason = _text(ctx, "reason", "a reason for the extension")
    await _check_extension_count(ctx)
    clock = await _handle_clock(ctx)
    if clock is not None and clock["deadline"] is not None and ctx.at >= clock["deadline"]:
        raise DeadlinePassed(
            f"the handling deadline {clock['deadline'].astimezone(ctx.cal.tz).isoformat()} has passed: "
            "an extension must be requested before it", field="days", deadline=clock["deadline"].isoformat())
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
        raise ValidationError(f"{days} days is more than the {requested} requested", field="days")
    minutes = round(ctx.cal.day_length.total_seconds() / 60 * days)
    await ctx.conn.execute("UPDATE ticket_legs SET extension_minutes = extension_minutes + $2 WHERE id = $1",
                           ctx.leg["id"], minutes)
    ctx.sets["extended_count"] = ctx.ticket["extended_count"] + 1
    ctx.detail.update(days=days, requested_days=requested)


async def refuse_extension(ctx: Ctx) -> None:
    ctx.detail["reason"] = _text(ctx, "reason", "why the extension is refused")


async def request_await(ctx: Ctx) -> None:
    ctx.detail["reason"] = _text(ctx, "reason", "what is awaited from the citizen")


async def await_citizen(ctx: Ctx) -> None:
    """The centre stops the handling clock while the citizen is awaited (usually on
    the unit's request_await); at most ``await_citizen.max_count`` times per leg, and
    paused time beyond ``max_working_days`` counts again (clocks.cap_pauses)."""
    if ctx.leg is None:
        raise Conflict(f"ticket {ctx.ticket['id']} has no lead unit")
    done = await _count_on_leg(ctx, "await_citizen")
    if done >= ctx.rules.await_max_count:
        raise LimitReached(f"本单位已暂停{done}次等待市民补充，已达上限（{ctx.rules.await_max_count}次）",
                           field="action", limit=ctx.rules.await_max_count)
    asked = await ctx.conn.fetchval(
        "SELECT detail->>'reason' FROM ticket_events WHERE ticket_id = $1 AND leg_id = $2 AND action = 'request_await' "
        "ORDER BY id DESC LIMIT 1", ctx.ticket["id"], ctx.leg["id"])
    if ctx.data.get("reason") is None and asked:
        ctx.data["reason"] = asked
    ctx.detail["reason"] = _text(ctx, "reason", "what is awaited from the citizen")
    ctx.detail["max_working_days"] = ctx.rules.await_max_working_days


async def refuse_await(ctx: Ctx) -> None:
    ctx.detail["reason"] = _text(ctx, "reason", "why the clock keeps running")


async def resume(ctx: Ctx) -> None:
    return None


async def reply(ctx: Ctx) -> None:
    assert ctx.leg is not None
    if ctx.leg["parent_leg_id"] is not None:
        raise IllegalTransition(f"the ticket was passed down to {ctx.leg['unit_code']}: reply to the unit above "
                                "with reply_up (回复上级)", current_state=ctx.ticket["state"])
    text = _text(ctx, "reply", "the reply (how the matter was handled)")
    basis = _text(ctx, "basis", "the basis of the reply (law, policy or facts found)")
    await ctx.conn.execute(
        "UPDATE ticket_legs SET state = 'replied', reply = $2, reply_basis = $3, replied_at = $4 WHERE id = $1",
        ctx.leg["id"], text, basis, ctx.at)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["handle"], leg_id=ctx.leg["id"])
    await clocks.start_clock(ctx.conn, ctx.cal, ctx.ticket, "reply", ctx.at)
    ctx.detail.update(reply=text, basis=basis)


async def approve_reply(ctx: Ctx) -> None:
    assert ctx.leg is not None
    ctx.sets["answer"] = ctx.leg["reply"]
    ctx.sets["callback_due_at"] = ctx.at
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["reply"])
    await clocks.start_clock(ctx.conn, ctx.cal, ctx.ticket, "callback", ctx.at)


async def _reopen_lead(ctx: Ctx) -> None:
    if ctx.leg is None:
        raise IllegalTransition(f"ticket {ctx.ticket['id']} was never dispatched (closed directly): "
                                "create a new ticket instead", current_state=ctx.ticket["state"])
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'signed' WHERE id = $1", ctx.leg["id"])
    await clocks.start_clock(ctx.conn, ctx.cal, ctx.ticket, "handle", ctx.at, leg_id=ctx.leg["id"],
                             unit_code=ctx.leg["unit_code"])
    ctx.sets.update(reopen_count=ctx.ticket["reopen_count"] + 1, closed_at=None, close_kind=None)


async def reopen(ctx: Ctx) -> None:
    ctx.detail["reason"] = _text(ctx, "reason", "why the ticket is handled again (重办)")
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
        raise ValidationError("satisfaction must be 1-5 (5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意), "
                              f"got {value!r}", field="satisfaction")
    return value


#: 回访 records whether the matter was resolved, beside the satisfaction (hotline.reports.rates)
RESOLUTIONS = ("resolved", "partly", "unresolved")


def _resolution(ctx: Ctx) -> str | None:
    value = ctx.data.get("resolution")
    if value is not None and value not in RESOLUTIONS:
        raise ValidationError("resolution must be resolved (解决), partly (部分解决) or unresolved (未解决), "
                              f"got {value!r}", field="resolution")
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
                      reason=_text(ctx, "reason", "what the citizen is dissatisfied with"))
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["callback"])
    ctx.sets.update(satisfaction=sat, resolution=resolution, callback_at=ctx.at)
    await _reopen_lead(ctx)


async def supervise(ctx: Ctx) -> None:
    """督办: with a handling unit, a supervision order (督办单) it must answer by a
    reply deadline, on its own clock (stage ``supervise``)."""
    instruction = _text(ctx, "instruction", "the supervision instruction (督办意见)")
    ctx.detail["instruction"] = instruction
    if ctx.leg is None or ctx.ticket["state"] in ("intake", "callback"):
        return  # nobody to answer an order: a note in the history
    due = _due_at(ctx, "reply_due_at")
    if due is None:
        due = ctx.cal.add(ctx.at, ctx.cal.day_length * ctx.rules.supervision_reply_working_days)
    await clocks.start_clock(ctx.conn, ctx.cal, ctx.ticket, "supervise", ctx.at, leg_id=ctx.leg["id"],
                             unit_code=ctx.leg["unit_code"], due_at=due)
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
    text = _text(ctx, "reply", "the answer to the supervision order (督办回复)")
    unit = ctx.actor.unit_code if ctx.actor else None
    order_id = ctx.data.get("order_id")
    if order_id is not None and (isinstance(order_id, bool) or not isinstance(order_id, int)):
        raise ValidationError(f"order_id must be a number, got {order_id!r}", field="order_id")
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
        raise Conflict(f"ticket {ctx.ticket['id']} has no lead unit to elevate from")
    reason = _text(ctx, "reason", "why the ticket is handled at a higher level (提级理由)")
    above = await _ancestors(ctx, ctx.leg["unit_code"])
    target = ctx.data.get("unit_code")
    if target is None:
        if not above:
            raise ValidationError(f"{ctx.leg['unit_code']!r} has no unit above it: name unit_code",
                                  field="unit_code")
        target = above[0]
    target = await check_unit(ctx.conn, target, "unit_code")
    if target not in above:
        raise ValidationError(f"{target!r} is not above {ctx.leg['unit_code']!r} (above it: "
                              f"{', '.join(above) or 'none'})", field="unit_code")
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
    reason = refusals.check_reason(code, outcome)
    answer = _text(ctx, "answer", "what the citizen was told (告知内容)")
    ctx.sets.update(close_kind=outcome, refusal_reason=reason.code, answer=answer, closed_at=ctx.at)
    ctx.detail.update(reason_code=reason.code, reason_name=reason.name, answer=answer)


async def refuse(ctx: Ctx) -> None:
    await _close_without_handling(ctx, "refused")


async def transfer_out(ctx: Ctx) -> None:
    await _close_without_handling(ctx, "transferred")


async def urge(ctx: Ctx) -> None:
    ctx.detail["message"] = _text(ctx, "message", "the urging message (催办内容)")


async def merge(ctx: Ctx) -> None:
    master_id = ctx.data.get("master_id")
    if isinstance(master_id, bool) or not isinstance(master_id, int):
        raise ValidationError("master_id (the ticket to merge into) is required", field="master_id")
    if master_id == ctx.ticket["id"]:
        raise ValidationError(f"ticket {master_id} cannot be merged into itself", field="master_id")
    master = await ctx.conn.fetchrow("SELECT id, state, master_id FROM tickets WHERE id = $1 FOR UPDATE", master_id)
    if master is None:
        raise ValidationError(f"unknown ticket {master_id}", field="master_id")
    # walk up the master's chain: finding this ticket means a cycle
    seen, cursor = {master_id}, master
    while cursor["master_id"] is not None:
        if cursor["master_id"] == ctx.ticket["id"]:
            raise ValidationError(f"ticket {master_id} is merged into {ctx.ticket['id']}: merging back would "
                                  "be a cycle", field="master_id")
        if cursor["master_id"] in seen:
            break
        seen.add(cursor["master_id"])
        cursor = await ctx.conn.fetchrow("SELECT id, state, master_id FROM tickets WHERE id = $1",
                                         cursor["master_id"])
    if master["state"] in ("closed", "merged"):
        raise Conflict(f"ticket {master_id} is {master['state']} ({STATE_NAMES_ZH[master['state']]}): "
                       "merge into an open ticket", field="master_id")
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
        raise ValidationError(f"unknown call {call_id!r}", field="call_id")
    await link_call(ctx.conn, ctx.ticket["id"], call_id)
    ctx.detail["call_id"] = call_id


_EDITABLE = {"subject", "facts", "location", "occurred_at", "caller_name", "contact_number", "category_code",
             "kind", "urgency", "confidential", "attachments", "region_code"}


async def update(ctx: Ctx) -> None:
    changes = ctx.data.get("changes")
    if not isinstance(changes, dict) or not changes:
        raise ValidationError(f"changes must be an object with some of {sorted(_EDITABLE)}", field="changes")
    unknown = set(changes) - _EDITABLE
    if unknown:
        raise ValidationError(f"cannot change {sorted(unknown)}", field=sorted(unknown)[0])
    c = dict(changes)
    if "kind" in c and c["kind"] not in KINDS:
        raise ValidationError(f"unknown kind {c['kind']!r}", field="kind")
    if "urgency" in c and c["urgency"] not in URGENCIES:
        raise ValidationError(f"unknown urgency {c['urgency']!r}", field="urgency")
    if "category_code" in c and not await ctx.conn.fetchval(
            "SELECT active FROM ticket_categories WHERE code = $1", c["category_code"]):
        raise ValidationError(f"unknown category {c['category_code']!r}", field="category_code")
    if "subject" in c and (not isinstance(c["subject"], str) or not 1 <= len(c["subject"].strip()) <= 200):
        raise ValidationError("subject must be 1-200 characters", field="subject")
    if "confidential" in c and not isinstance(c["confidential"], bool):
        raise ValidationError("confidential must be true or false", field="confidential")
    if "attachments" in c:
        c["attachments"] = check_attachments(c["attachments"])
    if "region_code" in c:
        c["region_code"] = await check_region(ctx.conn, c["region_code"])
    if "occurred_at" in c and c["occurred_at"] is not None:
        try:
            c["occurred_at"] = datetime.fromisoformat(str(c["occurred_at"]))
        except ValueError:
            raise ValidationError("occurred_at must be ISO 8601", field="occurred_at") from None
    if "contact_number" in c:
        from hotline.phone import normalize

        c["contact_number"] = normalize(str(c["contact_number"] or "")).number
    ctx.sets.update(c)
    ctx.detail["changed"] = sorted(c)


async def assist_sign(ctx: Ctx) -> None:
    assert ctx.leg is not None
    if ctx.leg["state"] != "dispatched":
        raise IllegalTransition(f"the assisting leg of {ctx.leg['unit_code']} is {ctx.leg['state']}, not awaiting "
                                "signature", current_state=ctx.ticket["state"])
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'signed', signed_at = $2 WHERE id = $1",
                           ctx.leg["id"], ctx.at)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["sign"], leg_id=ctx.leg["id"])


async def assist_reply(ctx: Ctx) -> None:
    assert ctx.leg is not None
    if ctx.leg["state"] not in ("dispatched", "signed"):
        raise IllegalTransition(f"the assisting leg of {ctx.leg['unit_code']} is {ctx.leg['state']}",
                                current_state=ctx.ticket["state"])
    text = _text(ctx, "reply", "the assisting unit's opinion")
    await ctx.conn.execute(
        "UPDATE ticket_legs SET state = 'replied', reply = $2, replied_at = $3, signed_at = coalesce(signed_at, $3) "
        "WHERE id = $1", ctx.leg["id"], text, ctx.at)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["sign", "handle"], leg_id=ctx.leg["id"])
    ctx.detail["reply"] = text


async def add_assist(ctx: Ctx) -> None:
    unit = await check_unit(ctx.conn, ctx.data.get("unit_code"), "unit_code")
    if unit == ctx.ticket["lead_unit_code"]:
        raise ValidationError(f"{unit!r} is the lead unit", field="unit_code")
    ctx.leg_id = await _new_leg(ctx, unit, "assist")
    await clocks.start_clocks(ctx.conn, ctx.cal, ctx.ticket, ctx.at,
                              [("sign", ctx.leg_id, unit, None), ("handle", ctx.leg_id, unit, None)])
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


async def _check_actor(ctx: Ctx, unit_leg: str | None, roles: frozenset[str]) -> None:
    actor = ctx.actor
    if actor is None:
        return  # the system itself (jobs, imports)
    acting = acting_roles(actor)  # a district's dispatcher acts for its unit, not for the centre
    if not acting & roles:
        raise Forbidden(f"{ctx.action} needs one of the roles {sorted(roles)}; you act as {sorted(acting)}",
                        required=sorted(roles))
    if unit_leg is None:
        return
    centre_may = bool(acting & (roles - {"liaison"}))
    if unit_leg == "lead":
        if ctx.leg is None:
            raise Conflict(f"ticket {ctx.ticket['id']} has no lead unit")
        if centre_may and "liaison" not in acting:
            return
        if actor.unit_code != ctx.leg["unit_code"]:
            raise Forbidden(f"only a liaison of the lead unit {ctx.leg['unit_code']!r} may {ctx.action} "
                            f"ticket {ctx.ticket['id']}")
    else:
        row = await ctx.conn.fetchrow(
            "SELECT * FROM ticket_legs WHERE ticket_id = $1 AND role = 'assist' AND unit_code = $2 "
            "AND state <> 'withdrawn' FOR UPDATE", ctx.ticket["id"], actor.unit_code)
        if row is None:
            raise Forbidden(f"your unit {actor.unit_code!r} is not assisting on ticket {ctx.ticket['id']}")
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
) -> dict[str, Any]:
    """Apply ``action`` to the ticket in one transaction; returns
    ``{ticket_id, from_state, state, event_id}``. Raises IllegalTransition (409)
    naming the current state and the allowed actions, Forbidden, ValidationError."""
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
            raise NotFound(f"no ticket {ticket_id}", field="id")
        ticket = dict(row)
        db_now, version = ticket.pop("db_now"), (ticket.pop("db_name"), ticket.pop("calendar_version"))
        state = ticket["state"]
        rule = TRANSITIONS.get((state, action))
        if rule is None:
            allowed = allowed_actions(state, acting_roles(actor) if actor else None)
            if action not in EFFECTS:
                raise ValidationError(f"unknown action {action!r}", field="action", allowed_actions=allowed)
            raise IllegalTransition(
                f"ticket {ticket_id} is {state} ({STATE_NAMES_ZH[state]}): {action} is not allowed; "
                f"allowed: {', '.join(allowed) or 'none'}",
                current_state=state, allowed_actions=allowed)
        now = at or db_now
        cal = await (calendars.load(conn, version=version) if calendars else load_calendar(conn, version=version))
        ctx = Ctx(conn, ticket, action, actor, dict(data), now, cal, load_sla_config())
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
            await clocks.recompute(conn, ctx.cal, ticket_ids=[ticket_id])
        return {"ticket_id": ticket_id, "from_state": state, "state": new_state, "event_id": event_id}

