"""One of each in hotline.db: the "unavailable" predicate (and the web's 503 on it),
the transaction helper, the advisory-lock registry and the run-on-one-node helper."""

from __future__ import annotations

import asyncio
import logging
import re

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from support import wait_for

from hotline.config import PACKAGE_DIR, Settings
from hotline.db import LockKey, is_unavailable, run_on_one_node, transaction
from hotline.web.middlewares import error_middleware


def test_unavailable_means_unreachable_or_restarting_not_bad_data() -> None:
    assert is_unavailable(ConnectionRefusedError())
    assert is_unavailable(asyncpg.exceptions.CannotConnectNowError("the database system is starting up"))
    assert is_unavailable(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    assert is_unavailable(asyncpg.exceptions.TooManyConnectionsError("too many clients"))
    assert not is_unavailable(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert not is_unavailable(ValueError("a bug"))


async def test_a_restarting_database_is_a_503_for_the_web() -> None:
    async def handler(request: web.Request) -> web.Response:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")

    resp = await error_middleware(make_mocked_request("GET", "/api/v1/calls"), handler)
    assert resp.status == 503
    assert b'"code": "unavailable"' in resp.body


async def test_transaction_joins_the_callers_transaction(runtime) -> None:
    pool = runtime.pool
    await pool.execute("CREATE TABLE IF NOT EXISTS tx_probe (n int)")
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                async with transaction(conn) as inner:
                    assert inner is conn
                    await inner.execute("INSERT INTO tx_probe VALUES (1)")
                raise RuntimeError("the caller's unit of work fails")
    assert await pool.fetchval("SELECT count(*) FROM tx_probe") == 0  # joined, so rolled back with it
    async with transaction(pool) as conn:
        assert conn.is_in_transaction()
        await conn.execute("INSERT INTO tx_probe VALUES (2)")
    assert await pool.fetchval("SELECT count(*) FROM tx_probe") == 1
    await pool.execute("DROP TABLE tx_probe")


def test_lock_keys_are_distinct_and_only_in_the_registry() -> None:
    assert len({int(k) for k in LockKey}) == len(LockKey)
    magic = re.compile(r"^\s*\w*LOCK\w*\s*=\s*[\d_]{4,}\s*(#.*)?$", re.M)
    literal = re.compile(r"pg_\w*advisory\w*\(\s*[\d_]{4,}")
    found = [str(p.relative_to(PACKAGE_DIR)) for p in PACKAGE_DIR.rglob("*.py")
             if p.name != "locks.py" and (magic.search(t := p.read_text(encoding="utf-8")) or literal.search(t))]
    assert found == [], f"advisory-lock keys outside hotline/db/locks.py: {found}"


async def test_run_on_one_node_waits_while_another_node_holds_the_lock(runtime, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="hotline.db.locks")
    stopping = asyncio.Event()
    entered = asyncio.Event()

    async def body(conn: asyncpg.Connection) -> None:
        entered.set()
        await stopping.wait()

    async with runtime.pool.acquire() as other_node:
        assert await other_node.fetchval("SELECT pg_try_advisory_lock($1)", int(LockKey.NOTIFY_DELIVERY))
        task = asyncio.create_task(run_on_one_node(runtime.pool, LockKey.NOTIFY_DELIVERY, body, stopping,
                                                   name="probe", retry_seconds=0.05))
        await wait_for(lambda: sum("another node holds NOTIFY_DELIVERY" in r.getMessage()
                                   for r in caplog.records) >= 2, what="two refused attempts")
        assert not entered.is_set()  # refused twice: it never ran while the other node held the lock
        await other_node.execute("SELECT pg_advisory_unlock($1)", int(LockKey.NOTIFY_DELIVERY))
    await asyncio.wait_for(entered.wait(), 30)
    stopping.set()
    await asyncio.wait_for(task, 30)
    key = int(LockKey.NOTIFY_DELIVERY)
    assert not await runtime.pool.fetchval(  # released when it stopped
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = $2",
        key >> 32, key & 0xFFFFFFFF)


async def test_a_work_pool_names_its_node_part_to_the_database(db_url: str, settings: Settings) -> None:
    """An operator reading pg_stat_activity (or the CPU bench) sees which node part holds
    which connection: ``hotline/agi``, ``hotline/ingest``, ``hotline/telephony``."""
    from hotline.db.pool import create_work_pool

    work = await create_work_pool(db_url, settings, part="agi", min_size=1, max_size=1)
    try:
        async with work.acquire() as conn:
            assert await conn.fetchval("SELECT application_name FROM pg_stat_activity "
                                       "WHERE pid = pg_backend_pid()") == "hotline/agi"
    finally:
        await work.close()
