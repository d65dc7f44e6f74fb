"""``incoming``: a citizen dialled one of the 33 numbers.

Identify the line, normalise the caller, look up the blocklist and the caller's
open tickets, decide the route, record the call, set the channel variables the
dialplan acts on. Reads only the request headers (no round trip before the
decision). If PostgreSQL does not answer within ``calls.db_timeout`` the call is
routed from the in-memory registry and its record goes to the journal.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from hotline.calls.blocklist import UNKNOWN
from hotline.calls.channel import Channel
from hotline.calls.context import CallContext
from hotline.calls.routing import LineMatch, Route, decide_route, identify_line
from hotline.calls.store import DatabaseDown, apply_op, is_connection_failure, make_entry, now
from hotline.phone import PhoneNumber, normalize

log = logging.getLogger("hotline.calls.incoming")

@dataclass(frozen=True, slots=True)
class IncomingResult:
    call_uid: str
    call_id: int | None  # None when the record went to the journal
    route: Route
    caller: PhoneNumber
    repeat_ticket_id: int | None
    journaled: bool
    variables: dict[str, str]
    variables_set: int
    hung_up: bool


def line_candidates(channel: Channel) -> list[tuple[str, str]]:
    req = channel.request
    return [
        ("line", req.param("line", 1)),
        ("agi_dnid", req.get("dnid")),
        ("agi_extension", req.get("extension")),
    ]


async def incoming(ctx: CallContext, channel: Channel) -> IncomingResult:
    req = channel.request
    started = now()
    uid = req.uniqueid[:150] or f"missing-uid-{uuid.uuid4().hex}"
    match = identify_line(ctx.registry, line_candidates(channel))
    caller = normalize(req.get("callerid"))
    caller_name = req.get("calleridname")
    if caller_name.lower() in ("unknown", ""):
        caller_name = ""
    decisions: list[dict[str, Any]] = [match.decision()]
    if not req.uniqueid:
        decisions.append({"step": "headers", "outcome": "missing agi_uniqueid", "call_uid": uid})
    if req.problems:
        decisions.append({"step": "headers", "outcome": "malformed", "problems": req.problems[:20]})
    decisions.append({"step": "caller", "kind": caller.kind.value, "known": caller.known})

    journaled = False
    call_id: int | None = None
    repeat_ticket_id: int | None = None
    route: Route
    try:
        async with ctx.store.connection() as conn:
            blocked, repeat_ticket_id, lookups = await _lookups(ctx, conn, caller, match)
            decisions.extend(lookups)
            route = _decide(ctx, match, blocked)
            entry = _start_entry(ctx, uid, req, match, caller, caller_name, route, decisions,
                                 repeat_ticket_id, started)
            # a call's first record never waits behind the journal (nothing of this call
            # can be in it), so a burst that spilled to the journal does not keep spilling
            call_id = await apply_op(conn, entry)  # one atomic statement
    except Exception as exc:  # whatever the database did, the call is routed and recorded
        if not isinstance(exc, DatabaseDown):
            log.exception("incoming %s: database step failed; routing from the registry", uid)
        decisions.append({"step": "database", "outcome": "unavailable", "action": "journal",
                          "error": f"{type(exc).__name__}: {exc}"[:200]})
        route = _decide(ctx, match, None)
        entry = _start_entry(ctx, uid, req, match, caller, caller_name, route, decisions, None, started)
        await ctx.journal.append_async(entry)
        journaled = True

    # the call is found again by the channel's UNIQUEID (= call_uid); HOTLINE_CALL_ID is
    # absent when the record went to the journal
    variables = {
        **route.variables(),
        "__HOTLINE_CALL_ID": "" if call_id is None else str(call_id),
        "__HOTLINE_TICKET_ID": "" if repeat_ticket_id is None else str(repeat_ticket_id),
    }
    variables = {k: v for k, v in variables.items() if v != ""}
    count, hung_up = await set_variables(channel, variables)
    truncated = getattr(channel, "truncated", None)  # values cut to fit Asterisk's command buffer
    if truncated:
        await ctx.writer.write(make_entry("update", uid, {"append": [{
            "step": "agi", "outcome": "value truncated", "detail": truncated[:5]}]}))
    if hung_up:
        await ctx.writer.write(make_entry("update", uid, {"append": [{
            "step": "agi", "outcome": "channel gone during the routing answer",
            "detail": getattr(channel, "end_reason", None) or "hangup",
            "variables_set": count, "variables_total": len(variables),
        }]}))
    return IncomingResult(uid, call_id, route, caller, repeat_ticket_id, journaled, variables, count, hung_up)


async def set_variables(channel: Channel, variables: dict[str, str]) -> tuple[int, bool]:
    """Set them (one ``MSet`` where the values allow); stop at the first sign of a
    hangup. Returns (count set, hung up)."""
    if channel.hung_up:
        return 0, True
    count = await channel.set_variables(variables)
    return count, channel.hung_up


def _decide(ctx: CallContext, match: LineMatch, blocked: str | None) -> Route:
    return decide_route(match, ctx.registry, ctx.calls, local_time=ctx.clock(), blocked_reason=blocked)


async def _lookups(
    ctx: CallContext, conn: asyncpg.Connection, caller: PhoneNumber, match: LineMatch
) -> tuple[str | None, int | None, list[dict[str, Any]]]:
    """Blocklist and repeat-caller lookups, outside a transaction: a failing lookup
    (another module's table missing, a bug) is recorded, never blocks the call."""
    decisions: list[dict[str, Any]] = []
    if not caller.known:
        return None, None, decisions
    known = ctx.blocklist.reason(caller.number, now()) if ctx.blocklist is not None else UNKNOWN
    if isinstance(known, str) or known is None:
        blocked = known
    else:  # no current copy on this node: ask the database
        blocked = await conn.fetchval(
            """SELECT reason FROM blocklist
                WHERE caller_number = $1 AND (expires_at IS NULL OR expires_at > now())""",
            caller.number,
        )
    if blocked is not None:
        return blocked, None, decisions
    since = now() - timedelta(days=ctx.calls.repeat_window_days)
    try:
        tickets = await ctx.tickets.open_tickets_for_caller(conn, caller.number, since=since)
    except Exception as exc:
        if is_connection_failure(exc):
            raise
        log.exception("repeat-caller lookup failed (%s)", ctx.tickets.name)
        decisions.append({"step": "repeat_caller", "outcome": "lookup failed", "error": str(exc)[:200]})
        return None, None, decisions
    if tickets:
        decisions.append({"step": "repeat_caller", "outcome": "linked", "ticket_id": tickets[0],
                          "open_tickets": tickets[:10], "window_days": ctx.calls.repeat_window_days})
        return None, tickets[0], decisions
    return None, None, decisions


def _start_entry(
    ctx: CallContext, uid: str, req: Any, match: LineMatch, caller: PhoneNumber, caller_name: str,
    route: Route, decisions: list[dict[str, Any]], repeat_ticket_id: int | None, started: Any,
) -> dict[str, Any]:
    state = "ringing" if route.route in ("blocked", "subcenter") else "queued"
    data: dict[str, Any] = {
        "channel": req.get("channel") or None,
        "source": "agi",
        "hotline_number": route.line.number,
        "dialled": match.dialled or None,
        "caller_number": caller.number,
        "caller_raw": caller.raw or None,
        "caller_kind": caller.kind.value,
        "caller_name": caller_name or None,
        "route": route.route,
        "queue": route.queue,
        "skill": route.skill,
        "dial_target": route.dial_target,
        "decisions": [*decisions, *route.decisions],
        "state": state,
        "started_at": started.isoformat(),
        # offered (queued_at) only once Asterisk says the call joined a queue: a caller who
        # hangs up during the announcement never reached one (AMI / queue_log set it)
        "linkedid": req.param("linkedid")[:150] or None,
        "repeat_ticket_id": repeat_ticket_id,
    }
    return make_entry("start", uid, data)
