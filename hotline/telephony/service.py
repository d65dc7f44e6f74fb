"""The telephony node service (role "workers"), when ``[calls] ami_host`` is set.

It keeps one AMI connection open (logs in, reconnects with backoff when Asterisk
restarts or the connection drops) and:

- on every (re)connect, on Asterisk's ``FullyBooted`` and every
  ``[calls] reconcile_interval`` seconds, reconciles the members of every hotline
  queue with the seat states (:func:`hotline.telephony.pbx.reconcile`);
- returns seats from after-call work to ready after ``[calls] wrapup_seconds``
  (publishing ``seat.changed``);
- hands every AMI event to its listeners (``add_listener``; the live call state of
  :mod:`hotline.telephony.live` is one), each in order through its own queue, so a
  slow or failing listener never holds up the connection or the others.

:meth:`TelephonyService.action` and :meth:`TelephonyService.action_list` send actions
on the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg

from hotline.agi.ami import AmiConfig, AmiConnection, AmiError
from hotline.calls import store
from hotline.calls.members import MemberChange, PbxUnreachable
from hotline.calls.settings import CallSettings
from hotline.db.pool import create_work_pool
from hotline.events import Topic
from hotline.runtime import Runtime
from hotline.services import NodeOptions
from hotline.telephony.live import LiveCalls
from hotline.telephony.pbx import AmiSeatPbx, ami_config, reconcile

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, str]], Awaitable[None]]
#: reconnect backoff: first retry, cap (seconds)
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
#: after a reconcile that could not finish, try again this soon (Asterisk still booting)
RETRY_SOON = 1.0
#: after-call work: the longest sleep without news (another node's seats, a lost event),
#: and the shortest (a burst of seats due at once)
WRAPUP_IDLE = 30.0
WRAPUP_MIN = 0.05


class TelephonyService:
    name = "telephony"
    role = "workers"
    order = 70

    def __init__(self, runtime: Runtime, calls: CallSettings, ami: AmiConfig) -> None:
        self.runtime = runtime
        self.calls = calls
        self.ami = ami
        self.connection: AmiConnection | None = None
        self.connected = asyncio.Event()
        self.connections = 0
        self.reconciles = 0
        self.last_changes: list[MemberChange] = []
        self._listeners: list[tuple[Listener, asyncio.Queue[dict[str, str]]]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.pool: asyncpg.Pool | None = None
        #: the live call state listener (started with the service)
        self.live: LiveCalls | None = None
        #: AMI events received, by name (the session's filter decides which arrive)
        self.received: Counter[str] = Counter()

    # -- listeners -------------------------------------------------------------------
    def add_listener(self, callback: Listener) -> None:
        """Receive every AMI event (a dict of its headers), in order. Exceptions are
        logged; the connection and the other listeners carry on."""
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._listeners.append((callback, queue))
        if self._tasks:  # already running
            self._workers.append(asyncio.create_task(self._deliver(callback, queue), name="ami-listener"))

    def wanted_events(self) -> bool | list[str]:
        """The events this node's listeners use (``events`` on each), plus FullyBooted
        (reconcile after Asterisk restarts); True when a listener does not say."""
        names = {"FullyBooted"}
        for callback, _ in self._listeners:
            wanted = getattr(callback, "events", None)
            if wanted is None:
                return True
            names.update(wanted)
        return sorted(names)

    def _on_event(self, event: dict[str, str]) -> None:
        name = event.get("Event") or ""
        self.received[name] += 1
        if name == "FullyBooted":
            self._wake.set()
        for _, queue in self._listeners:
            queue.put_nowait(event)

    async def _deliver(self, callback: Listener, queue: asyncio.Queue[dict[str, str]]) -> None:
        while True:
            event = await queue.get()
            try:
                await callback(event)
            except Exception:
                log.exception("AMI listener %r failed on %s", callback, event.get("Event"))

    # -- actions on the persistent connection ------------------------------------------
    def _require(self) -> AmiConnection:
        conn = self.connection
        if conn is None or conn.closed.is_set():
            raise AmiError(f"AMI at {self.ami.host}:{self.ami.port}: not connected")
        return conn

    async def action(self, name: str, fields: dict[str, object] | None = None) -> dict[str, str]:
        """Send an action on the service's connection; its response (AmiError/AmiRefused)."""
        return await self._require().action(name, fields)

    async def action_list(self, name: str, fields: dict[str, object] | None = None) -> list[dict[str, str]]:
        """Send a list action; its events up to the ``...Complete`` one."""
        return await self._require().action_list(name, fields)

    def seat_pbx(self) -> AmiSeatPbx:
        """Seat changes on this node's connection (a short one while it is down)."""
        return AmiSeatPbx(self.ami, self.runtime.registry, self.connection)

    async def reconcile_now(self) -> list[MemberChange]:
        """Reconcile at once on the open connection; the changes made."""
        changes = await reconcile(self._require(), self.runtime.pool, self.runtime.registry)
        self.reconciles += 1
        self.last_changes = changes
        if changes:
            log.info("reconcile: %s", "; ".join(c.describe() for c in changes))
        return changes

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        from hotline.telephony import live

        # the live call state writes on a pool of its own (no reset query per release)
        self.pool = await create_work_pool(self.runtime.db.url, self.runtime.settings, part="telephony", min_size=1, max_size=4)
        live_calls = self.live = live.listener(self.runtime, self.pool)
        try:  # without the node's events, each AgentConnect and hang-up costs a look in the database
            await live_calls.follow_events(await self.runtime.events())
        except Exception as exc:
            log.warning("live call state without the node's events: %s", exc)
        self.add_listener(live_calls)
        self._closers.append(live_calls.close)
        self._workers = [asyncio.create_task(self._deliver(cb, q), name="ami-listener") for cb, q in self._listeners]
        self._tasks = [asyncio.create_task(self._connection_loop(), name="telephony-ami"),
                       asyncio.create_task(self._wrapup_loop(), name="telephony-wrapup")]

    async def _connection_loop(self) -> None:
        backoff = BACKOFF_FIRST
        down_logged = False
        while not self._stopping.is_set():
            conn = AmiConnection(self.ami, events=self.wanted_events(), on_event=self._on_event)
            try:
                await conn.connect()
            except AmiError as exc:
                if not down_logged:
                    log.warning("AMI unreachable, retrying with backoff: %s", exc)
                    down_logged = True
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            log.info("AMI connected (%s)", conn.banner)
            self.connection, backoff, down_logged = conn, BACKOFF_FIRST, False
            self.connections += 1
            self.connected.set()
            try:
                await self._while_connected(conn)
            finally:
                self.connected.clear()
                self.connection = None
                await conn.close()
            if not self._stopping.is_set():
                log.warning("AMI connection lost; reconnecting")

    async def _while_connected(self, conn: AmiConnection) -> None:
        while not (self._stopping.is_set() or conn.closed.is_set()):
            self._wake.clear()
            wait = self.calls.reconcile_interval
            try:
                await self.reconcile_now()
            except PbxUnreachable as exc:
                log.warning("reconcile: %s", exc)
                wait = min(wait, RETRY_SOON)
            except Exception:  # the database may be away: the next round tries again
                log.exception("reconcile failed")
                wait = min(wait, RETRY_SOON)
            stop = asyncio.ensure_future(self._stopping.wait())
            closed = asyncio.ensure_future(conn.closed.wait())
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({stop, closed, woken}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for fut in (stop, closed, woken):
                    fut.cancel()

    async def _wrapup_loop(self) -> None:
        """Seats in after-call work return to ready when their ``wrapup_seconds`` are up.
        The loop sleeps until the next one is due: a seat entering after-call work
        (``seat.changed``) is due ``wrapup_seconds`` later, without asking the database;
        the database is asked when a seat is due (and, without news, every WRAPUP_IDLE
        seconds: another node's seats, a lost event)."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        due_at = loop.time()

        def on_seat(topic: str, payload: dict[str, object]) -> None:
            nonlocal due_at
            if payload.get("state") == "after_call":
                due_at = min(due_at, loop.time() + self.calls.wrapup_seconds)
                changed.set()

        unsubscribe = None
        with contextlib.suppress(Exception):  # without events, the idle check still runs
            unsubscribe = (await self.runtime.events()).subscribe(Topic.SEAT_CHANGED, on_seat)
        try:
            while not self._stopping.is_set():
                changed.clear()
                if loop.time() >= due_at:
                    due_at = loop.time() + WRAPUP_IDLE
                    try:
                        async with (self.pool or self.runtime.pool).acquire() as conn:
                            _, due = await store.finish_wrapups_due(conn, self.calls.wrapup_seconds)
                        if due is not None:
                            due_at = min(due_at, loop.time() + max(due, WRAPUP_MIN))
                    except Exception as exc:  # the database may be away for a while
                        log.warning("returning seats from after-call work failed (will retry): %s", exc)
                        due_at = loop.time() + RETRY_SOON
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(due_at - loop.time(), 0.0)):
                        stop = asyncio.ensure_future(self._stopping.wait())
                        woken = asyncio.ensure_future(changed.wait())
                        try:
                            await asyncio.wait({stop, woken}, return_when=asyncio.FIRST_COMPLETED)
                        finally:
                            stop.cancel()
                            woken.cancel()
        finally:
            if unsubscribe is not None:
                unsubscribe()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def stop(self) -> None:
        self._stopping.set()
        if self.connection is not None:
            await self.connection.close()
        for task in self._tasks + self._workers:
            task.cancel()
        for task in self._tasks + self._workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks, self._workers = [], []
        for close in self._closers:
            with contextlib.suppress(Exception):
                await close()
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def describe(self) -> str:
        return (f"AMI {self.ami.host}:{self.ami.port}: queue members follow seat states "
                f"(reconcile every {self.calls.reconcile_interval:g} s), {len(self._listeners)} event listener(s)")


def create_service(runtime: Runtime, options: NodeOptions) -> TelephonyService | None:
    calls = CallSettings.from_settings(runtime.settings)
    ami = ami_config(calls)
    if ami is None:
        return None
    return TelephonyService(runtime, calls, ami)
