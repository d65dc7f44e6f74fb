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
from hotline.calendar.store import load_calendar
from hotline.errors import Conflict, Forbidden, NotFound, ValidationError
from hotline.sla import clocks
from hotline.tickets.catalogue import check_unit, default_unit
from hotline.tickets.history import append_event, transaction
from hotline.tickets.intake import _check_attachments, link_call
from hotline.tickets.model import (
    ACTION_NAMES_ZH,
    KINDS,
    SAME,
    STATE_NAMES_ZH,
    TRANSITIONS,
    URGENCIES,
    allowed_actions,
)

#: the longest extension one request may ask for, in working days
MAX_EXTENSION_DAYS = 30


class IllegalTransition(Conflict):
    code = "illegal_transition"


class DeadlinePassed(Conflict):
    code = "deadline_passed"


@dataclass(slots=True)
class Ctx:
    conn: asyncpg.Connection
    ticket: dict[str, Any]
    action: str
    actor: User | None
    data: dict[str, Any]
    at: datetime
    cal: WorkCalendar
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


async def _lead_leg(conn: asyncpg.Connection, ticket_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM ticket_legs WHERE ticket_id = $1 AND role = 'lead' AND state <> 'withdrawn' FOR UPDATE",
        ticket_id)
    return dict(row) if row else None


async def _new_leg(ctx: Ctx, unit: str, role: str) -> int:
    try:
        leg_id = await ctx.conn.fetchval(
            """INSERT INTO ticket_legs (ticket_id, unit_code, role, dispatched_at) VALUES ($1, $2, $3, $4)
               RETURNING id""", ctx.ticket["id"], unit, role, ctx.at)
    except asyncpg.UniqueViolationError:
        raise ValidationError(f"unit {unit!r} already has a leg on ticket {ctx.ticket['id']}",
                              field="assist_units") from None
    return int(leg_id)


def _due_at(ctx: Ctx) -> datetime | None:
    raw = ctx.data.get("due_at")
    if raw is None:
        return None
    try:
        due = datetime.fromisoformat(str(raw))
    except ValueError:
        raise ValidationError(f"due_at {raw!r} is not an ISO 8601 date-time", field="due_at") from None
    if due.tzinfo is None:
        due = due.replace(tzinfo=ctx.cal.tz)
    if due <= ctx.at:
        raise ValidationError(f"due_at {due.isoformat()} is in the past", field="due_at")
    return due


async def _dispatch_legs(ctx: Ctx) -> None:
    unit = ctx.data.get("unit_code")
    if unit is None:
        unit = await default_unit(ctx.conn, ctx.ticket["category_code"])  # active units only
        if unit is None:
            raise ValidationError("unit_code is required: the ticket's category has no default unit "
                                  "in the dispatch catalogue", field="unit_code")
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


async def return_(ctx: Ctx) -> None:
    assert ctx.leg is not None
    reason = _text(ctx, "reason", "a reason (why the ticket is not this unit's matter)")
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'returned', return_reason = $2 WHERE id = $1",
                           ctx.leg["id"], reason)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["sign"], leg_id=ctx.leg["id"])
    ctx.sets["returned_count"] = ctx.ticket["returned_count"] + 1
    ctx.detail["reason"] = reason


async def redispatch(ctx: Ctx) -> None:
    assert ctx.leg is not None
    if ctx.data.get("unit_code") == ctx.leg["unit_code"]:
        raise ValidationError(f"unit {ctx.leg['unit_code']!r} returned the ticket; to send it back there "
                              "use reject_return", field="unit_code")
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'withdrawn' WHERE id = $1", ctx.leg["id"])
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, leg_id=ctx.leg["id"], cancel=True)
    ctx.detail["from_unit"] = ctx.leg["unit_code"]
    await _dispatch_legs(ctx)


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
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= MAX_EXTENSION_DAYS:
        raise ValidationError(f"{key} must be a number of working days between 0 and {MAX_EXTENSION_DAYS}, "
                              f"got {days!r}", field=key)
    return float(days)


async def request_extension(ctx: Ctx) -> None:
    days = _days(ctx)
    reason = _text(ctx, "reason", "a reason for the extension")
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


async def await_citizen(ctx: Ctx) -> None:
    ctx.detail["reason"] = _text(ctx, "reason", "what is awaited from the citizen")


async def resume(ctx: Ctx) -> None:
    return None


async def reply(ctx: Ctx) -> None:
    assert ctx.leg is not None
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
        await ctx.conn.execute("UPDATE ticket_legs SET state = 'signed' WHERE ticket_id = $1 AND state = 'closed'",
                               ctx.ticket["id"])


def _satisfaction(ctx: Ctx) -> int:
    value = ctx.data.get("satisfaction")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValidationError("satisfaction must be 1-5 (5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意), "
                              f"got {value!r}", field="satisfaction")
    return value


async def callback_close(ctx: Ctx) -> None:
    sat = _satisfaction(ctx)
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["callback"])
    ctx.sets.update(satisfaction=sat, close_kind="completed", closed_at=ctx.at, callback_at=ctx.at)
    await ctx.conn.execute("UPDATE ticket_legs SET state = 'closed' WHERE ticket_id = $1 AND state <> 'withdrawn'",
                           ctx.ticket["id"])
    # one reply, one callback plan: the merged tickets close with their master
    await ctx.conn.execute("UPDATE tickets SET closed_at = $2, satisfaction = $3, updated_at = now() "
                           "WHERE master_id = $1", ctx.ticket["id"], ctx.at, sat)
    ctx.detail.update(satisfaction=sat, comment=str(ctx.data.get("comment") or "")[:2000])


async def callback_reopen(ctx: Ctx) -> None:
    sat = _satisfaction(ctx)
    ctx.detail.update(satisfaction=sat, reason=_text(ctx, "reason", "what the citizen is dissatisfied with"))
    await clocks.stop_clocks(ctx.conn, ctx.ticket["id"], ctx.at, stages=["callback"])
    ctx.sets.update(satisfaction=sat, callback_at=ctx.at)
    await _reopen_lead(ctx)


async def supervise(ctx: Ctx) -> None:
    ctx.detail["instruction"] = _text(ctx, "instruction", "the supervision instruction (督办意见)")


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
             "kind", "urgency", "confidential", "attachments"}


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
        c["attachments"] = _check_attachments(c["attachments"])
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
}
assert {a for (_, a) in TRANSITIONS} == set(EFFECTS), "every action in the table needs an effect"


async def _check_actor(ctx: Ctx, unit_leg: str | None, roles: frozenset[str]) -> None:
    actor = ctx.actor
    if actor is None:
        return  # the system itself (jobs, imports)
    if not actor.has_role(*roles):
        raise Forbidden(f"{ctx.action} needs one of the roles {sorted(roles)}; you have {sorted(actor.roles)}",
                        required=sorted(roles))
    if unit_leg is None:
        return
    centre_may = bool(actor.roles & (roles - {"liaison"}))
    if unit_leg == "lead":
        if ctx.leg is None:
            raise Conflict(f"ticket {ctx.ticket['id']} has no lead unit")
        if centre_may and "liaison" not in actor.roles:
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


async def apply(
    conn: asyncpg.Connection,
    ticket_id: int,
    action: str,
    actor: User | None,
    data: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
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
            allowed = allowed_actions(state, actor.roles if actor else None)
            if action not in EFFECTS:
                raise ValidationError(f"unknown action {action!r}", field="action", allowed_actions=allowed)
            raise IllegalTransition(
                f"ticket {ticket_id} is {state} ({STATE_NAMES_ZH[state]}): {action} is not allowed; "
                f"allowed: {', '.join(allowed) or 'none'}",
                current_state=state, allowed_actions=allowed)
        now = at or db_now
        ctx = Ctx(conn, ticket, action, actor, data, now, await load_calendar(conn, version=version))
        ctx.note = str(data.get("note") or "")[:4000]
        if rule.unit_leg == "lead" or action in ("redispatch", "reject_return", "approve_extension",
                                                  "approve_reply", "reopen", "callback_reopen", "callback_close"):
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

