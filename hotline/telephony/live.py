"""Live call state from the AMI event stream (DESIGN.md decision 3a).

The AGI decides (route, queue, dial target); Asterisk is the authority on what a
channel is doing. This listener turns the AMI events of the telephony service's
connection into call-record operations, written through the same journal-aware
writer as the AGI flows (:class:`hotline.calls.journal.CallWriter`):

- ``QueueCallerJoin`` → ``queue_join``: the call is offered (``queued_at``) and waits
  in that queue (a dual line's overflow moves it to the 12345 queue);
- ``AgentConnect`` → ``answer`` with the member interface: the agent is on the call
  (the store ignores it when the queue member's gosub already reported it);
- ``Hangup`` of a citizen's channel → ``end``, after a grace period: the AGI hangup
  handler normally reports the end with Asterisk's DIALSTATUS and ANSWEREDTIME, which
  only it knows; when it never arrives (the FastAGI node was down, the handler's
  connection failed) the call still ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hotline.calls.context import CallContext
from hotline.calls.store import DatabaseDown, make_entry, now
from hotline.runtime import Runtime

log = logging.getLogger("hotline.telephony.live")

#: seconds the AGI hangup handler gets to report a hang-up before the AMI event ends the call
HANGUP_GRACE = 5.0
#: a citizen's channel hangs up in one of the generated contexts
_CITIZEN_CONTEXTS = ("hotline-",)

Listener = Callable[[dict[str, str]], Awaitable[None]]


def event_time(event: dict[str, str]) -> str:
    """When Asterisk says it happened (``Timestamp``, manager.conf ``timestampevents = yes``),
    else when we heard of it."""
    stamp = event.get("Timestamp")
    if stamp:
        try:
            return datetime.fromtimestamp(float(stamp), UTC).isoformat()
        except (ValueError, OverflowError, OSError):
            pass
    return now().isoformat()


class LiveCalls:
    #: the AMI events this listener uses (the telephony service asks Asterisk for no others)
    events = ("QueueCallerJoin", "AgentConnect", "Hangup")

    def __init__(self, ctx: CallContext, *, hangup_grace: float = HANGUP_GRACE) -> None:
        self.ctx = ctx
        self.hangup_grace = hangup_grace
        self._pending: set[asyncio.Task[None]] = set()

    async def __call__(self, event: dict[str, str]) -> None:
        kind = event.get("Event", "")
        if kind == "QueueCallerJoin":
            await self._write("queue_join", event.get("Uniqueid", ""), {"at": event_time(event),
                                                                        "queue": event.get("Queue") or None})
        elif kind == "AgentConnect":
            await self._agent_connect(event)
        elif kind == "Hangup" and event.get("Context", "").startswith(_CITIZEN_CONTEXTS):
            uid = event.get("Uniqueid", "")
            if uid:
                task = asyncio.ensure_future(self._late_end(uid, event, event_time(event)))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    async def _write(self, op: str, uid: str, data: dict[str, Any]) -> None:
        if not uid:
            return
        await self.ctx.writer.write(make_entry(op, uid, data))

    async def _agent_connect(self, event: dict[str, str]) -> None:
        # the member's gosub nearly always reported this answer already (through the AGI):
        # one cheap look saves the answer operation's transaction; the store would ignore
        # it anyway, and resolves the member to its seat when it is new
        uid = event.get("Uniqueid", "")
        try:
            async with self.ctx.store.connection() as conn:
                if await conn.fetchval("SELECT answered_at IS NOT NULL FROM calls WHERE call_uid = $1", uid):
                    return
        except DatabaseDown:
            pass  # unknown: journal it, as any record operation during an outage
        member = event.get("Interface") or event.get("MemberName") or ""
        await self._write("answer", uid, {"at": event_time(event), "answered_by": member or None})

    async def _late_end(self, uid: str, event: dict[str, str], at: str) -> None:
        await asyncio.sleep(self.hangup_grace)
        try:
            async with self.ctx.store.connection() as conn:
                row = await conn.fetchrow("SELECT ended_at IS NOT NULL AS ended FROM calls WHERE call_uid = $1", uid)
        except DatabaseDown:
            row = None  # unknown: journal the end; a second end is a no-op when applied
        else:
            if row is None or row["ended"]:
                return  # not a citizen's call (another hotline-* channel), or already ended
            log.info("call %s: hung up without the AGI hangup report; ended from the AMI event", uid)
        await self._write("end", uid, {"at": at, "cause": event.get("Cause") or None,
                                       "source": "ami"})

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        for task in list(self._pending):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass


def listener(runtime: Runtime, pool: asyncpg.Pool | None = None) -> LiveCalls:
    """The AMI event listener the telephony service subscribes (one per node), over
    ``pool`` (the service's own) or the runtime's."""
    return LiveCalls(CallContext.for_runtime(runtime, pool=pool))
