"""The blocklist in memory: ``incoming``'s first look-up costs no round trip.

The table holds a handful of rows (emergency and out-of-scope numbers, abusive
callers an office blocked) and changes a few times a day, while every citizen's call
asks it. A node keeps a copy:

* loaded when the FastAGI service starts, and again every ``refresh_seconds`` (a
  backstop, and the retry when the database was down at start);
* a change to the table publishes ``blocklist.changed`` (a statement trigger,
  migration 0099): every node drops its copy at once, so the next call asks the
  database until the copy is reloaded; the same happens when the node's event
  connection comes back after a gap (it may have missed a change).

Until a copy is loaded :meth:`Blocklist.reason` answers :data:`UNKNOWN` and the flow
asks the database as before. Expiry is checked against the time of the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any, Final

import asyncpg

from hotline.events import Topic

log = logging.getLogger("hotline.calls.blocklist")


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


#: :meth:`Blocklist.reason` when no current copy is held: ask the database
UNKNOWN: Final = _Unknown()

LOAD = "SELECT caller_number, reason, expires_at FROM blocklist"


class Blocklist:
    def __init__(self, refresh_seconds: float = 60.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._entries: dict[str, tuple[str, datetime | None]] | None = None
        #: bumped by every change notice: a load that started before one is not kept
        self._generation = 0
        self.loads = 0
        #: calls answered from the copy / sent to the database (no current copy)
        self.answered = 0
        self.missed = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._listener: Any = None
        self._unsubscribe: Any = None

    @property
    def loaded(self) -> bool:
        return self._entries is not None

    def reason(self, number: str, at: datetime) -> str | None | _Unknown:
        """Why ``number`` is blocked at ``at``, None if it is not, :data:`UNKNOWN`
        without a current copy."""
        entries = self._entries
        if entries is None:
            self.missed += 1
            return UNKNOWN
        self.answered += 1
        found = entries.get(number)
        if found is None:
            return None
        reason, expires_at = found
        return reason if expires_at is None or expires_at > at else None

    def invalidate(self, *_: Any) -> None:
        """The table changed (or a change may have been missed): drop the copy now and
        load a new one in the background."""
        self._generation += 1
        self._entries = None
        self._wake.set()

    async def load(self, pool: asyncpg.Pool | asyncpg.Connection) -> None:
        generation = self._generation
        rows = await pool.fetch(LOAD)
        if generation != self._generation:  # changed while loading: the next round loads it
            return
        self._entries = {r["caller_number"]: (r["reason"], r["expires_at"]) for r in rows}
        self.loads += 1

    async def start(self, pool: asyncpg.Pool, listener: Any) -> None:
        """Follow the table for this node: change notices from ``listener`` (the node's
        :class:`~hotline.events.EventListener`), a reload every ``refresh_seconds``."""
        self._listener = listener
        self._unsubscribe = listener.subscribe(Topic.BLOCKLIST_CHANGED, self.invalidate)
        listener.on_reconnect.append(self.invalidate)
        self._task = asyncio.create_task(self._follow(pool), name="blocklist")

    async def _follow(self, pool: asyncpg.Pool) -> None:
        while True:
            self._wake.clear()  # a notice during the load wakes the wait below at once
            try:
                await self.load(pool)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.info("blocklist not loaded (%s); calls ask the database", exc)
                self._entries = None
            # a current copy waits for the next notice or the backstop; without one (the
            # database is down) it tries again soon
            wait = self.refresh_seconds if self._entries is not None else min(self.refresh_seconds, 1.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._listener is not None and self.invalidate in self._listener.on_reconnect:
            self._listener.on_reconnect.remove(self.invalidate)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
