"""Live call state from the AMI event stream (DESIGN.md decision 3a).

The AGI decides (route, queue, dial target); Asterisk is the authority on what a
channel is doing. This listener turns the AMI events of the telephony service's
connection into call-record operations, written through the same journal-aware
writer as the AGI flows (:class:`hotline.calls.journal.CallWriter`):

- ``QueueCallerJoin`` → ``queue_join``: the call is offered (``queued_at``) and waits
  in that queue (a dual line's overflow moves it to the 12345 queue);
- ``AgentConnect`` → ``answer`` with the member interface: the agent is on the call
  (the queue member's gosub nearly always reported it first: its ``call.updated`` event,
  heard within a short grace, makes AMI's report free; the store would ignore it anyway);
- ``Hangup`` of a citizen's channel → ``end``, after a grace period: the AGI hangup
  handler normally reports the end with Asterisk's DIALSTATUS and ANSWEREDTIME, which
  only it knows; when it never arrives (the FastAGI node was down, the handler's
  connection failed) the call still ends. An end already heard of (``call.updated``)
  costs no look in the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hotline.calls.context import CallContext
from hotline.calls.store import DatabaseDown, make_entry, now
from hotline.events import EventListener, Topic
from hotline.runtime import Runtime

log = logging.getLogger("hotline.telephony.live")

#: seconds the AGI hangup handler gets to report a hang-up before the AMI event ends the call
HANGUP_GRACE = 5.0
#: seconds the queue member's gosub gets to report an answer before AMI's AgentConnect is looked at
ANSWER_GRACE = 1.0
#: calls remembered as reported answered / ended (each)
MEMORY = 20_000
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

    def __init__(self, ctx: CallContext, *, hangup_grace: float = HANGUP_GRACE,
                 answer_grace: float = ANSWER_GRACE, memory: int = MEMORY) -> None:
        self.ctx = ctx
        self.hangup_grace = hangup_grace
        self.answer_grace = answer_grace
        self._pending: set[asyncio.Task[None]] = set()
        # calls the flows (of any node) reported answered / ended, from their ``call.updated``
        # events: AMI's report of the same fact then costs no look in the database
        self.memory = memory
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._ended: OrderedDict[str, None] = OrderedDict()
        #: AgentConnect and hang-up reports handled after their grace; how many needed a look
        self.handled = 0
        self.looked_up = 0
        self._unsubscribe: Callable[[], None] | None = None

    async def follow_events(self, listener: EventListener) -> None:
        self._unsubscribe = listener.subscribe(Topic.CALL_UPDATED, self._on_call_updated)

    def _on_call_updated(self, topic: str, payload: dict[str, Any]) -> None:
        uid, state = payload.get("call_uid"), payload.get("state")
        if not isinstance(uid, str):
            return
        if state == "answered":
            self._remember(self._answered, uid)
        elif state in ("completed", "abandoned", "failed"):
            self._remember(self._ended, uid)

    def _remember(self, seen: OrderedDict[str, None], uid: str) -> None:
        seen[uid] = None
        seen.move_to_end(uid)
        while len(seen) > self.memory:
            seen.popitem(last=False)

    async def __call__(self, event: dict[str, str]) -> None:
        kind = event.get("Event", "")
        if kind == "QueueCallerJoin":
            await self._write("queue_join", event.get("Uniqueid", ""), {"at": event_time(event),
                                                                        "queue": event.get("Queue") or None})
        elif kind == "AgentConnect":
            if event.get("Uniqueid"):
                self._later(self._agent_connect(event, event_time(event)))
        elif kind == "Hangup" and event.get("Context", "").startswith(_CITIZEN_CONTEXTS):
            uid = event.get("Uniqueid", "")
            if uid:
                self._later(self._late_end(uid, event, event_time(event)))

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        self.handled += 1

    async def _write(self, op: str, uid: str, data: dict[str, Any]) -> None:
        if not uid:
            return
        await self.ctx.writer.write(make_entry(op, uid, data))

    async def _agent_connect(self, event: dict[str, str], at: str) -> None:
        # the member's gosub nearly always reports this answer (through the AGI) within the
        # grace: its event makes this a no-op; else one look, and the answer when it is new
        uid = event.get("Uniqueid", "")
        await asyncio.sleep(self.answer_grace)
        if uid in self._answered:
            return
        self.looked_up += 1
        try:
            async with self.ctx.store.connection() as conn:
                if await conn.fetchval("SELECT answered_at IS NOT NULL FROM calls WHERE call_uid = $1", uid):
                    return
        except DatabaseDown:
            pass  # unknown: journal it, as any record operation during an outage
        member = event.get("Interface") or event.get("MemberName") or ""
        await self._write("answer", uid, {"at": at, "answered_by": member or None})

    async def _late_end(self, uid: str, event: dict[str, str], at: str) -> None:
        await asyncio.sleep(self.hangup_grace)
        if uid in self._ended:
            return  # the AGI hangup handler (or another source) ended it
        self.looked_up += 1
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
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
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
