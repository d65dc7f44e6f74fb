"""Transfers of an answered call, all of them in this module: to the line's
expert-seat pool (专家座席) or to a sub-centre (分中心), decided from the console
(:func:`transfer_live_call`, which then has the caller's channel moved) or from inside
the dialplan (:func:`transfer_from_channel`, a feature code or blind transfer into
``hotline-transfer``), and finished by the ``Dial()`` result (:func:`finish_attempt`).

Every attempt is recorded in ``transfer_attempts``, carries the ticket, publishes
``transfer.expert`` / ``transfer.subcenter``, and falls back (the expert pool queue or
a callback ticket; the 12345 queue) when the target cannot take the call.

Choosing an expert locks the seat row with ``FOR UPDATE SKIP LOCKED`` and marks
it ``on_call`` in the same transaction: two agents transferring at the same
moment never get the same expert.

Moving a live channel is a port (:class:`ChannelMover`): the PBX adapter (AMI
``Setvar HOTLINE_XFER_*`` and ``Redirect`` to ``hotline-transfer,decided,1``, where the
generated dialplan acts on the decision) is given by the composition root
(``hotline.node``: :func:`hotline.agi.live_transfer.ami_mover`), so neither this module
nor the web routes import an adapter. If the PBX refuses, the decision is undone (the
expert's seat freed, the attempt marked failed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import asyncpg

from hotline.calls import store
from hotline.calls.channel import Channel
from hotline.calls.context import CallContext
from hotline.calls.incoming import set_variables
from hotline.calls.settings import EXPERT_FALLBACKS
from hotline.calls.store import OPEN_STATES, DatabaseDown, make_entry, now
from hotline.errors import Conflict, HotlineError, NotFound, ValidationError
from hotline.events import Topic, publish
from hotline.registry import Hotline, Mode

log = logging.getLogger("hotline.calls.transfer")


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    call_id: int
    call_uid: str
    kind: str  # expert | subcenter
    outcome: str  # connecting | dialling | queued | callback_ticket | failed
    hotline_number: str
    target: str | None
    timeout: int | None
    attempt_id: int
    expert_user_id: int | None = None
    ticket_id: int | None = None
    reason: str | None = None

    def variables(self, callback_sound: str) -> dict[str, str]:
        values: dict[str, Any] = {
            "HOTLINE_XFER_OUTCOME": self.outcome,
            "HOTLINE_XFER_ATTEMPT": self.attempt_id,
            "HOTLINE_XFER_TARGET": self.target if self.outcome in ("connecting", "dialling") else None,
            "HOTLINE_XFER_QUEUE": self.target if self.outcome == "queued" else None,
            "HOTLINE_XFER_TIMEOUT": self.timeout,
            "HOTLINE_XFER_SOUND": callback_sound if self.outcome == "callback_ticket" else None,
            "__HOTLINE_TICKET_ID": self.ticket_id,
        }
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def _load_call(conn: asyncpg.Connection, call_id: int | None, call_uid: str | None) -> asyncpg.Record:
    if call_id is not None:
        row = await conn.fetchrow("SELECT * FROM calls WHERE id = $1 FOR UPDATE", call_id)
    else:
        row = await conn.fetchrow("SELECT * FROM calls WHERE call_uid = $1 FOR UPDATE", call_uid)
    if row is None:
        raise NotFound(f"通话不存在：{call_id or call_uid}", field="call", code="call_not_found",
                       value=call_id or call_uid)
    if row["state"] not in OPEN_STATES:
        raise Conflict(f"通话 {row['id']} 当前为“{CALL_STATES_ZH.get(row['state'], row['state'])}”，"
                       "只有进行中的通话可以转接", field="call", code="call_not_live", state=row["state"])
    return row


def _pool_line(ctx: CallContext, call: asyncpg.Record, target: str | None) -> Hotline:
    number = target or call["hotline_number"]
    line = ctx.registry.get(number)
    if line is None:
        raise ValidationError(f"转接目标热线号码不存在：{number}", field="target", code="unknown_line", value=number)
    if line.mode is not Mode.DUAL or not line.expert_pool:
        raise ValidationError(
            f"热线 {number} 没有专家座席组，请选择一条双号并行热线作为转接目标",
            field="target", code="no_expert_pool", value=number,
        )
    return line


async def transfer_expert(
    ctx: CallContext,
    *,
    call_id: int | None = None,
    call_uid: str | None = None,
    target: str | None = None,
    fallback: str | None = None,
    requested_by: int | None = None,
    via: str = "agi",
) -> TransferOutcome:
    fallback = fallback or ctx.calls.expert_fallback
    if fallback not in EXPERT_FALLBACKS:
        raise ValidationError(f"专家无人接听时的去向无效：{fallback}（可选：queue 回到12345队列、callback 预约回呼）",
                              field="fallback", code="invalid_choice", value=fallback)
    async with ctx.store.connection() as conn:
        async with conn.transaction():
            call = await _load_call(conn, call_id, call_uid)
            line = _pool_line(ctx, call, target)
            expert = await conn.fetchrow(
                """SELECT s.user_id, s.interface FROM seats s JOIN users u ON u.id = s.user_id
                    WHERE s.state = 'ready' AND u.active AND 'expert' = ANY (u.roles)
                      AND u.hotline_number = $1
                    ORDER BY s.since, s.user_id
                    LIMIT 1
                    FOR UPDATE OF s SKIP LOCKED""",
                line.number,
            )
            ticket_id = call["ticket_id"] or call["repeat_ticket_id"]
            reason = None
            expert_id = None
            if expert is not None:
                expert_id = expert["user_id"]
                await store.seat_on_call(conn, expert_id, call["id"])
                outcome = "connecting"
                # the seat's phone; without one, the pool queue (the expert is logged in there)
                target_str = expert["interface"] or line.expert_pool
            elif fallback == "callback":
                target_str = None
                outcome, ticket_id, reason = await _callback(ctx, conn, call, line, requested_by, ticket_id)
                if outcome == "queued":
                    target_str = line.expert_pool
            else:
                outcome, target_str, reason = "queued", line.expert_pool, "no expert seat free"
            attempt_id = await _record_attempt(
                conn, call, "expert", line.number, target_str, outcome, reason,
                expert_user_id=expert_id, ticket_id=ticket_id, requested_by=requested_by, via=via,
            )
            await publish(conn, Topic.TRANSFER_EXPERT, {
                "call_id": call["id"], "expert_user_id": expert_id, "ticket_id": ticket_id, "outcome": outcome,
            })
            if expert_id is not None:
                # the expert's console pops the call with its ticket
                await publish(conn, Topic.CALL_OFFERED, {
                    "call_id": call["id"], "user_id": expert_id, "hotline_number": call["hotline_number"],
                })
    return TransferOutcome(
        call["id"], call["call_uid"], "expert", outcome, line.number, target_str,
        ctx.calls.expert_dial_timeout, attempt_id, expert_id, ticket_id, reason,
    )


async def _callback(
    ctx: CallContext, conn: asyncpg.Connection, call: asyncpg.Record, line: Hotline,
    requested_by: int | None, ticket_id: int | None,
) -> tuple[str, int | None, str | None]:
    note = f"专家座席({line.number})无空闲，请专家回拨来电人。"
    try:
        async with conn.transaction():  # a savepoint: a failing tickets module leaves our work intact
            created = await ctx.tickets.create_callback_ticket(
                conn, call_id=call["id"], hotline_number=line.number,
                caller_number=call["caller_number"], note=note, actor_user_id=requested_by,
            )
    except asyncpg.PostgresError as exc:
        log.exception("callback ticket for call %s failed", call["id"])
        return "queued", ticket_id, f"no expert seat free; callback ticket failed ({exc.sqlstate}); queued"
    if created is None:
        return "queued", ticket_id, f"no expert seat free; callback tickets unavailable ({ctx.tickets.name}); queued"
    await store.link_ticket(conn, call["id"], created)
    return "callback_ticket", created, "no expert seat free; callback ticket created"


async def transfer_subcenter(
    ctx: CallContext,
    *,
    call_id: int | None = None,
    call_uid: str | None = None,
    target: str | None = None,
    requested_by: int | None = None,
    via: str = "agi",
) -> TransferOutcome:
    async with ctx.store.connection() as conn:
        async with conn.transaction():
            call = await _load_call(conn, call_id, call_uid)
            number = target or call["hotline_number"]
            line = ctx.registry.get(number)
            if line is None or line.mode is not Mode.SUBCENTER or not line.dial_target:
                raise ValidationError(
                    f"{number} 不是分中心热线，请选择一个分中心作为转接目标", field="target",
                    code="not_a_subcenter", value=number,
                )
            reason = None
            if line.service_hours.is_open(ctx.clock()):
                outcome, target_str = "dialling", line.dial_target
            else:
                outcome, target_str = "failed", None
                reason = "sub-centre closed (service hours); the call stays with 12345"
            attempt_id = await _record_attempt(
                conn, call, "subcenter", line.number, target_str or line.dial_target, outcome, reason,
                ticket_id=call["ticket_id"] or call["repeat_ticket_id"], requested_by=requested_by, via=via,
            )
            await publish(conn, Topic.TRANSFER_SUBCENTER, {"call_id": call["id"], "target": line.number, "outcome": outcome})
    return TransferOutcome(
        call["id"], call["call_uid"], "subcenter", outcome, line.number, target_str,
        line.no_answer_timeout, attempt_id, None, call["ticket_id"] or call["repeat_ticket_id"], reason,
    )


async def _record_attempt(
    conn: asyncpg.Connection, call: asyncpg.Record, kind: str, number: str, target: str | None,
    outcome: str, reason: str | None, *, expert_user_id: int | None = None, ticket_id: int | None = None,
    requested_by: int | None = None, via: str = "agi",
) -> int:
    attempt_id = await conn.fetchval(
        """INSERT INTO transfer_attempts (call_id, kind, hotline_number, target, expert_user_id, ticket_id,
                                          outcome, reason, requested_by, via,
                                          finished_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                   CASE WHEN $7 IN ('failed', 'callback_ticket') THEN now() END)
           RETURNING id""",
        call["id"], kind, number, target, expert_user_id, ticket_id, outcome, reason, requested_by, via,
    )
    decision = {"step": f"transfer_{kind}", "attempt_id": attempt_id, "outcome": outcome, "line": number,
                "target": target, "via": via, "at": now().isoformat()}
    if expert_user_id is not None:
        decision["expert_user_id"] = expert_user_id
    if reason:
        decision["reason"] = reason
    state = "transferred" if outcome in ("connecting", "dialling") else (
        "queued" if outcome == "queued" else None)
    await store.note_on_call(conn, call["id"], [decision], state=state)
    if outcome in ("connecting", "dialling", "queued", "callback_ticket"):
        # the transferring agent's seat is free of this call
        await store.seats_leave_call(conn, call["id"], except_user=expert_user_id)
    return int(attempt_id)


async def finish_attempt(conn: asyncpg.Connection, attempt_id: int, outcome: str) -> dict[str, Any] | None:
    """The dialplan's ``Dial()`` to the target came back (``dial_result``)."""
    row = await conn.fetchrow(
        """UPDATE transfer_attempts SET outcome = $2, finished_at = now()
            WHERE id = $1 AND finished_at IS NULL
            RETURNING id, call_id, kind, hotline_number, expert_user_id, ticket_id""",
        attempt_id, outcome,
    )
    if row is None:
        return None
    if row["kind"] == "expert":
        if outcome != "answered" and row["expert_user_id"] is not None:
            # the expert did not pick up: the seat is free again
            await store.free_seat(conn, row["expert_user_id"], row["call_id"])
        elif outcome == "answered":
            await store.set_answered_by(conn, row["call_id"], f"expert:{row['expert_user_id']}")
        await publish(conn, Topic.TRANSFER_EXPERT, {
            "call_id": row["call_id"], "expert_user_id": row["expert_user_id"],
            "ticket_id": row["ticket_id"], "outcome": outcome,
        })
    else:
        await publish(conn, Topic.TRANSFER_SUBCENTER, {
            "call_id": row["call_id"], "target": row["hotline_number"], "outcome": outcome,
        })
    return dict(row)


async def release_attempt(conn: asyncpg.Connection, attempt_id: int, reason: str) -> None:
    """The channel could not be moved (AMI refused): undo the seat, mark the attempt failed."""
    await conn.execute(
        "UPDATE transfer_attempts SET reason = $2, channel_moved = false WHERE id = $1", attempt_id, reason
    )
    await finish_attempt(conn, attempt_id, "failed")


def journal_failure(call_uid: str, kind: str, error: str) -> dict[str, Any]:
    """A call-record note for a transfer that could not be decided (database away)."""
    return make_entry("update", call_uid, {"append": [{
        "step": f"transfer_{kind}", "outcome": "failed", "reason": f"database unavailable: {error}"[:200],
        "action": "12345 queue", "at": now().isoformat(),
    }]})


# ---- from the console: decide, then move the caller's channel -------------------------

TRANSFER_CONTEXT = "hotline-transfer"
DECIDED_EXTEN = "decided"
KINDS = ("expert", "subcenter")
#: a call's state as the console names it (hotline/web/static/js/pages/agent.js)
CALL_STATES_ZH = {"ringing": "振铃", "queued": "排队中", "answered": "通话中", "transferred": "已转接",
                  "completed": "已结束", "abandoned": "放弃", "failed": "失败"}


class ChannelNotMoved(Exception):
    """The PBX refused to move the channel, or could not be reached."""


class ChannelMover(Protocol):
    async def redirect(self, channel: str, context: str, exten: str, priority: int, *,
                       variables: Mapping[str, str]) -> None:
        """Move ``channel`` to ``context,exten,priority`` after setting ``variables``;
        raises :class:`ChannelNotMoved`."""


async def transfer_live_call(
    ctx: CallContext, *, call_id: int, kind: str, target: str | None = None, fallback: str | None = None,
    requested_by: int | None = None, mover: ChannelMover | None = None,
) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValidationError(f"转接类型无效：{kind}（可选：expert 专家座席、subcenter 分中心）",
                              field="kind", code="invalid_choice", value=kind)
    if kind == "expert":
        result: TransferOutcome = await transfer_expert(
            ctx, call_id=call_id, target=target, fallback=fallback, requested_by=requested_by, via="api")
    else:
        result = await transfer_subcenter(ctx, call_id=call_id, target=target, requested_by=requested_by, via="api")
    body = result.to_json()
    if result.outcome == "failed":
        body.update(channel_moved=False, note="转接未成功，通话仍在原座席")
        return body
    if mover is None:
        body.update(channel_moved=None, note="未配置电话系统管理接口（[calls] ami_host）：已记录转接决定，通话未移动")
        return body
    async with ctx.store.connection() as conn:
        channel = await conn.fetchval("SELECT channel FROM calls WHERE id = $1", result.call_id)
    try:
        if not channel:
            raise ChannelNotMoved("the call has no Asterisk channel on record")
        await mover.redirect(channel, TRANSFER_CONTEXT, DECIDED_EXTEN, 1,
                             variables=result.variables(ctx.calls.callback_sound))
    except ChannelNotMoved as exc:
        log.warning("transfer of call %s: channel not moved: %s", result.call_id, exc)
        async with ctx.store.connection() as conn:
            async with conn.transaction():
                await release_attempt(conn, result.attempt_id, f"channel not moved: {exc}"[:300])
                # the citizen is still with the agent: the call is answered again
                await store.note_on_call(conn, result.call_id, [{
                    "step": f"transfer_{kind}", "attempt_id": result.attempt_id, "outcome": "failed",
                    "reason": f"AMI: {exc}"[:200]}], state="answered", only_from=("transferred", "queued"))
        body.update(outcome="failed", channel_moved=False, reason=f"电话系统未能移动通话：{exc}")
        return body
    async with ctx.store.connection() as conn:
        await conn.execute("UPDATE transfer_attempts SET channel_moved = true WHERE id = $1", result.attempt_id)
    body.update(channel_moved=True, note=None)
    return body


# ---- from inside the dialplan: the AGI runs on the caller's channel ----------------------

async def transfer_from_channel(ctx: CallContext, channel: Channel, kind: str) -> str:
    req = channel.request
    uid = (req.param("uid", 2) or req.uniqueid)[:150]
    target = req.param("target", 1).strip() or None
    flow = transfer_expert if kind == "expert" else transfer_subcenter
    try:
        result = await flow(ctx, call_uid=uid, target=target, via="agi")
    except DatabaseDown as exc:
        await ctx.writer.write(journal_failure(uid, kind, str(exc)))
        await set_variables(channel, {"HOTLINE_XFER_OUTCOME": "failed"})
        return "failed"
    except HotlineError as exc:
        log.warning("transfer_%s for %s refused: %s", kind, uid, exc.message)
        await ctx.writer.write(make_entry("update", uid, {"append": [{
            "step": f"transfer_{kind}", "outcome": "failed", "reason": exc.message[:200],
            "via": "agi", "at": now().isoformat(),
        }]}))
        await set_variables(channel, {"HOTLINE_XFER_OUTCOME": "failed"})
        return "failed"
    await set_variables(channel, result.variables(ctx.calls.callback_sound))
    return result.outcome
