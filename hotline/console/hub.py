"""The console's WebSocket hub: one per web node.

Browsers open ``/api/v1/console/ws`` once per page. The hub listens to the node's
event listener (PostgreSQL ``LISTEN/NOTIFY``, see :mod:`hotline.events`) and fans
each event out to the people it concerns:

* ``call.offered`` → the agent's seat goes ``on_call`` and the agent gets the
  screen-pop (``screen_pop``);
* ``transfer.expert`` → the expert gets the call with the ticket so far
  (``transfer``, also kept in ``console_inbox``); the agent gets the outcome;
* ``transfer.subcenter``, ``call.updated`` → whoever is showing that call;
* ``ticket.changed`` → the unit's liaisons, dispatchers and supervisors;
* ``console.expert_returned`` (an expert handed a call back) → the agent;
* anything touching calls or seats → the wallboard is recomputed (at once after a
  quiet spell, at most every 200 ms in a burst) and pushed to supervisors when it
  changed. Browsers never poll.

Events are hints; the tables are the truth: a page loads its state over HTTP and
the hub only tells it what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from hotline.auth import User
from hotline.console import screenpop, seats, wallboard
from hotline.events import Topic
from hotline.jsoncodec import dumps
from hotline.runtime import Runtime

log = logging.getLogger(__name__)

WALLBOARD_DEBOUNCE = 0.2  # seconds: at most one wallboard push per this interval
SAFETY_REFRESH = 15.0  # seconds: recompute even without events (events are hints)
SESSION_CHECK = 30.0  # seconds: close sockets whose session ended (logout everywhere)
SEND_TIMEOUT = 5.0  # seconds a push may wait for one browser before that socket is closed
TOPICS = (Topic.CALL_OFFERED, Topic.CALL_UPDATED, Topic.TRANSFER_EXPERT, Topic.TRANSFER_SUBCENTER,
          Topic.SEAT_CHANGED, Topic.TICKET_CHANGED, Topic.CONSOLE_EXPERT_RETURNED)
#: what changes the wallboard's figures (it is recomputed once per burst, see mark_dirty)
WALLBOARD_TOPICS = frozenset({Topic.CALL_OFFERED, Topic.CALL_UPDATED, Topic.SEAT_CHANGED, Topic.TRANSFER_EXPERT,
                              Topic.TRANSFER_SUBCENTER})


WATCHED_CALLS = 20  # calls a page keeps hearing about (the latest ones)


class Socket(Protocol):
    """What the hub needs of a browser's WebSocket (the web route passes aiohttp's)."""

    @property
    def closed(self) -> bool: ...

    async def send_str(self, data: str) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


@dataclass(eq=False)
class Client:
    ws: Socket
    user: User
    token_hash: str
    calls: set[int] = field(default_factory=set)

    def watch(self, call_id: int) -> None:
        self.calls.add(call_id)
        if len(self.calls) > WATCHED_CALLS:  # ids grow with time: keep the newest
            self.calls = set(sorted(self.calls)[-WATCHED_CALLS:])


class ConsoleHub:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.clients: set[Client] = set()
        self.by_user: dict[int, set[Client]] = defaultdict(set)
        self._unsubscribe: list[Callable[[], None]] = []
        self._started = False
        self._start_lock = asyncio.Lock()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_wallboard: str | None = None
        self.pushes = 0
        self.session_check = SESSION_CHECK

    # -- lifecycle -----------------------------------------------------------------
    async def ensure_started(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            listener = await self.runtime.events()
            for topic in TOPICS:
                self._unsubscribe.append(listener.subscribe(topic, self._on_event))
            listener.on_reconnect.append(self.mark_dirty)
            self._unsubscribe.append(lambda: listener.on_reconnect.remove(self.mark_dirty)
                                     if self.mark_dirty in listener.on_reconnect else None)
            self._tasks = [
                asyncio.create_task(self._wallboard_loop(), name="console-wallboard"),
                asyncio.create_task(self._housekeeping_loop(), name="console-housekeeping"),
            ]
            self._started = True

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in list(self.clients):
            with contextlib.suppress(Exception):
                await client.ws.close(code=1001, message=b"server shutting down")
        self._started = False

    def add(self, client: Client) -> None:
        self.clients.add(client)
        self.by_user[client.user.id].add(client)

    def remove(self, client: Client) -> None:
        self.clients.discard(client)
        self.by_user[client.user.id].discard(client)
        if not self.by_user[client.user.id]:
            del self.by_user[client.user.id]

    # -- sending -------------------------------------------------------------------
    async def _send(self, targets: list[Client], text: str) -> None:
        async def one(client: Client) -> None:
            if client.ws.closed:
                return
            try:
                await asyncio.wait_for(client.ws.send_str(text), SEND_TIMEOUT)
            except TimeoutError:
                # a browser that stopped reading must not hold up everyone else's pushes
                log.warning("closing the console socket of %s: not reading", client.user.username)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.ws.close(code=1013, message=b"too slow"), 1.0)
            except (ConnectionError, RuntimeError) as exc:
                log.debug("dropping console socket of %s: %s", client.user.username, exc)
        if targets:
            await asyncio.gather(*(one(c) for c in targets))

    async def send_user(self, user_id: int, message: dict[str, Any]) -> None:
        await self._send(list(self.by_user.get(user_id, ())), dumps(message))

    async def send_roles(self, roles: tuple[str, ...], message: dict[str, Any],
                         only: Callable[[User], bool] | None = None) -> None:
        targets = [c for c in self.clients if c.user.has_role(*roles) and (only is None or only(c.user))]
        await self._send(targets, dumps(message))

    async def send_call_watchers(self, call_id: int, message: dict[str, Any]) -> None:
        await self._send([c for c in self.clients if call_id in c.calls], dumps(message))

    # -- events --------------------------------------------------------------------
    def mark_dirty(self) -> None:
        self._dirty.set()

    async def _on_event(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            await self._dispatch(topic, payload)
        except Exception:
            log.exception("console hub failed on %s %s", topic, payload)

    async def _dispatch(self, topic: str, payload: dict[str, Any]) -> None:
        if topic in WALLBOARD_TOPICS:
            self.mark_dirty()
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            Topic.CALL_OFFERED: self._call_offered,
            Topic.CALL_UPDATED: self._call_updated,
            Topic.TRANSFER_EXPERT: self._transfer_expert,
            Topic.TRANSFER_SUBCENTER: self._transfer_subcenter,
            Topic.SEAT_CHANGED: self._seat_changed,
            Topic.CONSOLE_EXPERT_RETURNED: self._expert_returned,
            Topic.TICKET_CHANGED: self._ticket_changed,
        }
        handler = handlers.get(topic)  # a Topic is its string: plain strings from the wire match
        if handler is not None:
            await handler(payload)

    async def _call_updated(self, payload: dict[str, Any]) -> None:
        call_id = int(payload["call_id"])
        await self.send_call_watchers(call_id, {"type": "call_updated", **payload})
        if payload.get("state") in ("completed", "abandoned", "failed"):
            # the call flow moves the seat to after-call work at hangup
            for user_id in {c.user.id for c in self.clients if call_id in c.calls}:
                seat = await seats.get_seat(self.runtime.pool, user_id)
                await self.send_user(user_id, {"type": "seat", "seat": seat.to_json()})

    async def _transfer_subcenter(self, payload: dict[str, Any]) -> None:
        await self.send_call_watchers(int(payload["call_id"]),
                                      {"type": "transfer_outcome", "kind": "subcenter", **payload})

    async def _seat_changed(self, payload: dict[str, Any]) -> None:
        user_id = int(payload["user_id"])
        if user_id in self.by_user:
            seat = await seats.get_seat(self.runtime.pool, user_id)
            message: dict[str, Any] = {"type": "seat", "seat": seat.to_json()}
            if payload.get("forced_by"):  # a supervisor changed it: the person is told who
                message["forced_by"] = str(payload["forced_by"])
            await self.send_user(user_id, message)

    async def _expert_returned(self, payload: dict[str, Any]) -> None:
        await self.send_call_watchers(int(payload["call_id"]),
                                      {"type": "transfer_outcome", "kind": "expert", "outcome": "returned",
                                       "call_id": int(payload["call_id"])})

    async def _ticket_changed(self, payload: dict[str, Any]) -> None:
        unit = payload.get("unit_code")
        message = {"type": "ticket", **payload}
        await self.send_roles(("liaison",), message, only=lambda u: unit is not None and u.unit_code == unit)
        await self.send_roles(("dispatcher", "supervisor", "expert"), message)

    async def _call_offered(self, payload: dict[str, Any]) -> None:
        call_id, user_id = int(payload["call_id"]), payload.get("user_id")
        if user_id is None:
            return
        user_id = int(user_id)
        targets = self.by_user.get(user_id)
        if not targets:
            await seats.mark_on_call(self.runtime.pool, user_id, call_id)
            return
        # the seat update and the pop's reads are independent: do them together
        changed, pop = await asyncio.gather(seats.mark_on_call(self.runtime.pool, user_id, call_id),
                                            screenpop.build(self.runtime, call_id))
        for client in targets:
            client.watch(call_id)
        await self.send_user(user_id, {"type": "screen_pop", **pop})
        if not changed:  # the call flow set the seat itself: tell the page
            seat = await seats.get_seat(self.runtime.pool, user_id)
            await self.send_user(user_id, {"type": "seat", "seat": seat.to_json()})

    async def _transfer_expert(self, payload: dict[str, Any]) -> None:
        call_id = int(payload["call_id"])
        expert_id = payload.get("expert_user_id")
        await self.send_call_watchers(call_id, {"type": "transfer_outcome", "kind": "expert", **payload})
        if expert_id is None:
            return
        expert_id = int(expert_id)
        ticket_id = payload.get("ticket_id")
        from_user = await self.runtime.pool.fetchval("SELECT agent_id FROM calls WHERE id = $1", call_id)
        with contextlib.suppress(asyncpg.ForeignKeyViolationError):
            await self.runtime.pool.execute(
                """INSERT INTO console_inbox (user_id, kind, call_id, ticket_id, from_user_id, detail)
                   VALUES ($1, 'transfer', $2, $3, $4, $5)
                   ON CONFLICT (kind, call_id, user_id) DO UPDATE
                         SET ticket_id = coalesce(EXCLUDED.ticket_id, console_inbox.ticket_id),
                             detail = EXCLUDED.detail, updated_at = now()""",
                expert_id, call_id, ticket_id, from_user, {"outcome": payload.get("outcome")},
            )
        if expert_id in self.by_user:
            pop = await screenpop.build(self.runtime, call_id)
            tickets = await screenpop.ticket_summaries(self.runtime, [int(ticket_id)] if ticket_id else [])
            for client in self.by_user[expert_id]:
                client.watch(call_id)
            await self.send_user(expert_id, {"type": "transfer", "outcome": payload.get("outcome"),
                                             "ticket": tickets[0] if tickets else None, **pop})

    # -- wallboard -----------------------------------------------------------------
    def _supervisors(self) -> list[Client]:
        return [c for c in self.clients if c.user.has_role("supervisor")]

    async def wallboard_data(self) -> dict[str, Any]:
        return await wallboard.snapshot(self.runtime.pool, self.runtime.registry, self.runtime.settings.timezone)

    async def _wallboard_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_push = -WALLBOARD_DEBOUNCE
        while True:
            try:
                await asyncio.wait_for(self._dirty.wait(), SAFETY_REFRESH)
            except TimeoutError:
                pass
            # the first change after a quiet spell goes out at once; a burst is
            # coalesced into at most one push per WALLBOARD_DEBOUNCE
            quiet = loop.time() - last_push
            if quiet < WALLBOARD_DEBOUNCE:
                await asyncio.sleep(WALLBOARD_DEBOUNCE - quiet)
            self._dirty.clear()
            last_push = loop.time()
            targets = self._supervisors()
            if not targets:
                continue
            try:
                data = await self.wallboard_data()
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("wallboard not computed: %s", exc)
                continue
            # the clock moves every time; push only when something else changed
            # (browsers count the longest wait up from oldest_queued_at themselves)
            key = dumps({k: v for k, v in data.items() if k not in ("at", "longest_wait_seconds")})
            if key == self._last_wallboard:
                continue
            self._last_wallboard = key
            self.pushes += 1
            await self._send(targets, dumps({"type": "wallboard", "wallboard": data}))

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.session_check)
            if not self.clients:
                continue
            try:
                alive = {r["token_hash"] for r in await self.runtime.pool.fetch(
                    "SELECT token_hash FROM sessions WHERE token_hash = ANY($1) AND expires_at > now()",
                    [c.token_hash for c in self.clients])}
            except (asyncpg.PostgresError, OSError):
                continue
            for client in [c for c in self.clients if c.token_hash not in alive]:
                with contextlib.suppress(Exception):
                    await client.ws.close(code=4401, message=b"session ended")
