"""Simulated calls for demo mode: arrive on weighted lines, wait in the queue, are
answered by a ready seat (the visitor's demo agent first), talk, hang up; some
give up. The simulated agents cycle through after-call work and breaks.

A driver carries each step to the call records: :class:`AgiDriver` through the
node's FastAGI server, :class:`DirectDriver` through the call store's operations;
neither writes a record of its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Coroutine
from typing import Any, Protocol

from hotline.calls.store import apply_op, make_entry, now
from hotline.console import seats
from hotline.demo import data
from hotline.runtime import Runtime

log = logging.getLogger("hotline.demo")


class Driver(Protocol):
    async def incoming(self, line: str, caller: str) -> str: ...

    async def connect(self, uid: str, user_id: int, interface: str) -> int | None: ...

    async def hangup(self, uid: str) -> None: ...


async def _apply(runtime: Runtime, op: str, uid: str, data: dict[str, Any], *, live: bool = True) -> int | None:
    """One call-record operation through the call store, as the flows and the AMI
    follower write them (the demo plays Asterisk; it has no record code of its own)."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        return await apply_op(conn, make_entry(op, uid, data), live=live)


class DirectDriver:
    """Plays the call's life through the call store's operations (``start``,
    ``queue_join``, ``answer``, ``end``): used when no FastAGI server runs on this node."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def incoming(self, line: str, caller: str) -> str:
        uid = f"demo-live-{uuid.uuid4().hex}"
        hl = self.runtime.registry.get(line) or self.runtime.registry.platform
        await _apply(self.runtime, "start", uid, {
            "source": "simulate", "hotline_number": hl.number, "dialled": line, "caller_number": caller,
            "caller_raw": caller, "caller_kind": "mobile", "route": hl.mode.value, "queue": hl.queue,
            "skill": hl.skill, "state": "queued", "started_at": now().isoformat(),
            "decisions": [{"step": "demo", "note": "simulated call"}],
        })
        await _apply(self.runtime, "queue_join", uid, {"at": now().isoformat(), "queue": hl.queue})
        return uid

    async def connect(self, uid: str, user_id: int, interface: str) -> int | None:
        state = await self.runtime.pool.fetchval("SELECT state FROM calls WHERE call_uid = $1", uid)
        if state != "queued":
            return None
        return await _apply(self.runtime, "answer", uid, {"at": now().isoformat(), "agent_id": user_id,
                                                          "answered_by": interface})

    async def hangup(self, uid: str) -> None:
        await _apply(self.runtime, "end", uid, {"at": now().isoformat(), "cause": "16"})


class AgiDriver:
    """Plays Asterisk against the node's own FastAGI server with the AGI peer
    (:mod:`hotline.agi.peer`): ``incoming``, the queue member's ``agent_connect``,
    the hangup handler. The call flow writes the records and publishes the events."""

    def __init__(self, runtime: Runtime, host: str, port: int) -> None:
        self.runtime, self.host, self.port = runtime, host, port

    async def incoming(self, line: str, caller: str) -> str:
        from hotline.agi.peer import simulate_call

        uid = f"demo-live-{uuid.uuid4().hex}"
        await simulate_call(self.host, self.port, dialled=line, caller=caller, hangup=False, uniqueid=uid)
        # what Asterisk's AMI would report next: the caller joined the queue
        hl = self.runtime.registry.get(line) or self.runtime.registry.platform
        await _apply(self.runtime, "queue_join", uid, {"at": now().isoformat(), "queue": hl.queue})
        return uid

    async def connect(self, uid: str, user_id: int, interface: str) -> int | None:
        from hotline.agi.peer import run_call

        await run_call(self.host, self.port, "agent_connect",
                       {"agi_channel": f"{interface}-{uuid.uuid4().hex[:8]}", "agi_uniqueid": f"{uid}-agent"}, [uid])
        call_id = await self.runtime.pool.fetchval(
            "SELECT id FROM calls WHERE call_uid = $1 AND agent_id = $2", uid, user_id)
        return None if call_id is None else int(call_id)

    async def hangup(self, uid: str) -> None:
        from hotline.agi.peer import run_call

        await run_call(self.host, self.port, "hangup", {"agi_uniqueid": uid}, [uid, "", "", "16", ""])


async def agi_reachable(host: str, port: int) -> bool:
    if not port:
        return False
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class Callers:
    """The demo's citizens: mostly new mobile numbers, a quarter of calls from someone
    who called recently (repeat callers, with their open tickets)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.recent: list[str] = []

    def next(self) -> str:
        if self.recent and self.rng.random() < 0.25:
            return self.rng.choice(self.recent)
        number = f"1{self.rng.choice('3578')}{self.rng.randrange(10**9):09d}"
        self.recent = (self.recent + [number])[-50:]
        return number


class Traffic:
    def __init__(self, runtime: Runtime, driver: Driver, *, simulated_agents: list[int],
                 rng: random.Random | None = None, mean_gap: float = 20.0, pace: float = 1.0) -> None:
        self.runtime = runtime
        self.driver = driver
        self.simulated = set(simulated_agents)
        self.rng = rng or random.Random()
        self.mean_gap = mean_gap
        self.pace = pace  # multiplies every wait (tests run the same script faster)
        self.give_up = 0.04  # share of callers who hang up while waiting
        self.callers = Callers(self.rng)
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        for user_id in self.simulated:
            with contextlib.suppress(Exception):
                await seats.set_state(self.runtime.pool, user_id, "ready")
        try:
            while True:
                await asyncio.sleep(self.rng.expovariate(1 / self.mean_gap) * self.pace)
                self._spawn(self.one_call())
        finally:
            for task in list(self._tasks):
                task.cancel()

    def _caller(self) -> str:
        return self.callers.next()

    async def _ready_seat(self) -> tuple[int, str] | None:
        """A ready demo seat, the visitor's own agent first, then the longest idle."""
        humans = [u.username for u in data.USERS if not u.simulated and "agent" in u.roles]
        row = await self.runtime.pool.fetchrow(
            """SELECT s.user_id, s.interface FROM seats s JOIN users u ON u.id = s.user_id
                WHERE s.state = 'ready' AND s.interface IS NOT NULL AND 'agent' = ANY (u.roles)
                  AND u.username LIKE 'demo-%'
                ORDER BY (u.username = ANY ($1)) DESC, s.since LIMIT 1""",
            humans,
        )
        return (row["user_id"], row["interface"]) if row else None

    async def _sleep(self, low: float, high: float) -> None:
        await asyncio.sleep(self.rng.uniform(low, high) * self.pace)

    async def one_call(self) -> None:
        try:
            line = self.rng.choices(list(data.LINE_WEIGHTS), list(data.LINE_WEIGHTS.values()))[0]
            uid = await self.driver.incoming(line, self._caller())
            await self._sleep(3, 14)
            seat = None
            for _ in range(12):
                seat = await self._ready_seat()
                if seat is not None:
                    break
                await self._sleep(3, 3)
            if seat is None or self.rng.random() < self.give_up:
                await self.driver.hangup(uid)  # the caller gave up
                return
            user_id, interface = seat
            if await self.driver.connect(uid, user_id, interface) is None:
                return
            simulated = user_id in self.simulated
            await (self._sleep(25, 70) if simulated else self._sleep(90, 180))
            await self.driver.hangup(uid)
            if simulated:
                await self._sleep(5, 15)
                if self.rng.random() < 0.15:
                    await seats.set_state(self.runtime.pool, user_id, "break", reason=self.rng.choice(["休息", "用餐"]))
                    await self._sleep(30, 90)
                await seats.set_state(self.runtime.pool, user_id, "ready")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulated call failed")
