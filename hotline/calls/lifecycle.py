"""The rest of a call's life as the dialplan reports it: an agent's seat picked it
up from the queue (``agent_connect``), a ``Dial()`` came back (``dial_result``),
the caller hung up (``hangup``). Each writes through the journal-aware writer,
so these records survive a database outage like the start of the call."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hotline.calls.channel import Channel, ChannelHungUp
from hotline.calls.context import CallContext
from hotline.calls.store import DatabaseDown, make_entry, now
from hotline.calls.transfer import finish_attempt

log = logging.getLogger("hotline.calls")

#: Asterisk DIALSTATUS → our outcome words
DIAL_OUTCOMES = {
    "ANSWER": "answered",
    "NOANSWER": "no_answer",
    "BUSY": "busy",
    "CHANUNAVAIL": "unreachable",
    "CONGESTION": "unreachable",
    "DONTCALL": "failed",
    "TORTURE": "failed",
    "INVALIDARGS": "failed",
    "CANCEL": "failed",
}


def call_uid_of(channel: Channel, position: int = 1) -> str:
    """The caller channel's uniqueid: parameter ``uid`` / argument N, else our own."""
    req = channel.request
    return (req.param("uid", position) or req.uniqueid)[:150]


def seat_interface(agi_channel: str) -> str:
    """``PJSIP/8001-0000002a`` → ``PJSIP/8001``; ``Local/8001@agents-00000001;2`` → ``Local/8001@agents``."""
    name = agi_channel.split(";", 1)[0]
    head, sep, tail = name.rpartition("-")
    if sep and tail and all(c in "0123456789abcdefABCDEF" for c in tail):
        return head
    return name


@dataclass(frozen=True, slots=True)
class ConnectResult:
    call_uid: str
    call_id: int | None
    agent_id: int | None
    interface: str
    journaled: bool


async def agent_connect(ctx: CallContext, channel: Channel) -> ConnectResult:
    """Run by the queue member's gosub on the agent's channel: arg 1 the caller's
    uniqueid, arg 2 (optional) the member interface. Marks the call answered, the
    seat on_call, and publishes ``call.offered`` (the console's screen-pop)."""
    req = channel.request
    uid = call_uid_of(channel)
    interface = req.param("interface", 2) or seat_interface(req.get("channel"))
    # the answer operation finds the seat of this phone (one statement) and notes it in the entry
    entry = make_entry("answer", uid, {"at": now().isoformat(), "agent_id": None, "answered_by": interface})
    before = ctx.writer.journaled
    call_id = await ctx.writer.write(entry)
    agent_id: int | None = entry["data"].get("agent_id")
    return ConnectResult(uid, call_id, agent_id, interface, ctx.writer.journaled > before)


@dataclass(frozen=True, slots=True)
class DialResult:
    call_uid: str
    outcome: str
    attempt_id: int | None
    fallback: bool


async def dial_result(ctx: CallContext, channel: Channel) -> DialResult:
    """After ``Dial()`` to a sub-centre (incoming route) or a transfer target: arg 1
    the transfer attempt id (empty for the incoming sub-centre route), arg 2 the
    DIALSTATUS, arg 3 the caller's uniqueid. Anything but ANSWER means the call goes
    back to the 12345 queue (the dialplan does that even without us)."""
    req = channel.request
    attempt = req.param("attempt", 1)
    status = (req.param("dialstatus", 2) or "").upper()
    uid = (req.param("uid", 3) or req.uniqueid)[:150]
    outcome = DIAL_OUTCOMES.get(status, "failed")
    fallback = outcome != "answered"
    attempt_id = int(attempt) if attempt.isdigit() else None
    at = now().isoformat()
    decision: dict[str, Any] = {"step": "dial_result", "dialstatus": status or None, "outcome": outcome, "at": at}
    platform = ctx.registry.platform
    if fallback:
        decision["action"] = f"back to the {platform.queue} queue (7x24)"
    if attempt_id is not None:
        try:
            async with ctx.store.connection() as conn:
                async with conn.transaction():
                    await finish_attempt(conn, attempt_id, outcome)
            decision["attempt_id"] = attempt_id
        except DatabaseDown:
            decision["attempt_id"] = attempt_id
            decision["attempt_not_updated"] = "database unavailable"
    data: dict[str, Any] = {"append": [decision]}
    if fallback:
        # offered again when Asterisk says it joined the queue (AMI / queue_log)
        data["set"] = {"state": "queued", "queue": platform.queue}
    await ctx.writer.write(make_entry("update", uid, data))
    if fallback:
        await _quiet_set(channel, "HOTLINE_QUEUE", platform.queue)
    return DialResult(uid, outcome, attempt_id, fallback)


@dataclass(frozen=True, slots=True)
class HangupResult:
    call_uid: str
    call_id: int | None
    journaled: bool


async def hangup(ctx: CallContext, channel: Channel) -> HangupResult:
    """The hangup handler on the caller's channel. The channel is dead, so every fact
    comes as an argument: uid, DIALSTATUS, ANSWEREDTIME, HANGUPCAUSE, QUEUESTATUS."""
    req = channel.request
    uid = call_uid_of(channel)
    data = {
        "at": now().isoformat(),
        "dialstatus": req.param("dialstatus", 2) or None,
        "answeredtime": req.param("answeredtime", 3) or None,
        "cause": req.param("cause", 4) or None,
        "queuestatus": req.param("queuestatus", 5) or None,
    }
    before = ctx.writer.journaled
    call_id = await ctx.writer.write(make_entry("end", uid, data))
    if data["dialstatus"]:
        await _finish_open_attempts(ctx, uid, DIAL_OUTCOMES.get(data["dialstatus"].upper(), "failed"))
    return HangupResult(uid, call_id, ctx.writer.journaled > before)


async def _finish_open_attempts(ctx: CallContext, uid: str, outcome: str) -> None:
    """A transfer whose ``Dial()`` was answered never reaches ``dial_result``: Dial()
    hangs the caller up when the bridged callee does (no ``g`` option), so the
    hangup handler's DIALSTATUS is the only report of how the last Dial() ended."""
    try:
        async with ctx.store.connection() as conn:
            async with conn.transaction():
                for attempt_id in await conn.fetch(
                    """SELECT a.id FROM transfer_attempts a JOIN calls c ON c.id = a.call_id
                        WHERE c.call_uid = $1 AND a.finished_at IS NULL
                          AND a.outcome IN ('connecting', 'dialling')""", uid):
                    await finish_attempt(conn, attempt_id["id"], outcome)
    except DatabaseDown:
        log.warning("call %s: open transfer attempts not finished (database unavailable)", uid)


async def _quiet_set(channel: Channel, name: str, value: str) -> None:
    try:
        await channel.set_variable(name, value)
    except ChannelHungUp:
        pass
