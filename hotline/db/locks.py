"""Every PostgreSQL advisory-lock key the backend takes, in one registry (no magic
numbers in the modules: two features sharing a key would exclude each other), and the
one "run on one node" helper for long-running singletons (the upstream push, the
notification delivery): the node holding the lock runs, the others wait their turn.

Periodic jobs take per-job keys from :func:`hotline.scheduler.lock_key` (a hash of the
job id with its own prefix, so it cannot meet these small numbers by accident)."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from hotline.db.errors import is_unavailable

log = logging.getLogger(__name__)


class LockKey(enum.IntEnum):
    #: one node applies migrations at a time
    MIGRATIONS = 7_345_120_001
    #: one node pushes the change log upstream
    UPSTREAM_PUSH = 7_345_120_601
    #: one node delivers notifications
    NOTIFY_DELIVERY = 7_345_120_683
    #: queue membership changes against the PBX (exclusive) vs seat changes (shared)
    PBX_MEMBERSHIP = 1_2345_0060


async def run_on_one_node(
    pool: asyncpg.Pool, key: LockKey, body: Callable[[asyncpg.Connection], Awaitable[None]],
    stopping: asyncio.Event, *, name: str, retry_seconds: float = 5.0,
) -> None:
    """Until ``stopping`` is set: take ``key`` on a connection of its own and, while it is
    held, run ``body(lock_conn)`` (which returns when ``stopping`` is set or when it sees
    ``lock_conn`` closed: the lock went with its connection and is taken again first).
    Another node holding the lock, or the database being unavailable, means waiting
    ``retry_seconds`` and trying again."""
    while not stopping.is_set():
        try:
            async with pool.acquire() as lock_conn:
                if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", int(key)):
                    log.debug("%s: another node holds %s; waiting", name, key.name)
                    await wait_or_stop(stopping, retry_seconds)
                    continue
                try:
                    await body(lock_conn)
                finally:
                    if not lock_conn.is_closed():
                        with contextlib.suppress(Exception):
                            await lock_conn.execute("SELECT pg_advisory_unlock($1)", int(key))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            level = logging.WARNING if is_unavailable(exc) else logging.ERROR
            log.log(level, "%s lost the database (%s); retrying", name, exc)
            await wait_or_stop(stopping, retry_seconds)


async def wait_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stopping`` is set, whichever is first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopping.wait()
