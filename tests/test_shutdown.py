"""``hotline serve`` on the embedded PostgreSQL, stopped with SIGTERM while requests
are in flight: they complete, PostgreSQL stops cleanly, and the next start needs no
manual cleanup."""

import asyncio
import signal
from pathlib import Path

import aiohttp
import asyncpg
from support import Node, start_node, wait_for


async def _lock_waiters(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()") >= 3


async def _printed(node: Node, text: str) -> None:
    """Read the node's output until a line with ``text`` (kept in ``node.output``)."""
    assert node.proc.stdout is not None
    async with asyncio.timeout(60):
        while line := (await node.proc.stdout.readline()).decode():
            node.output.append(line)
            if text in line:
                return
    raise AssertionError(f"the node never printed {text!r}:\n{node.text}")


async def test_sigterm_finishes_in_flight_requests_and_restarts_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    pgdata = data_dir / "pg"
    node = await start_node(data_dir)
    try:
        async with aiohttp.ClientSession() as http:
            assert (await http.get(node.url("/healthz"))).status == 200
            # Hold a lock so that requests reading the registry are in flight in the handler.
            blocker = await asyncpg.connect(f"postgresql://postgres@/hotline?host={pgdata}")
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("LOCK TABLE hotlines IN ACCESS EXCLUSIVE MODE")
            requests = [asyncio.create_task(http.get(node.url("/api/v1/hotlines"))) for _ in range(3)]
            watcher = await asyncpg.connect(f"postgresql://postgres@/hotline?host={pgdata}")
            try:  # (not the blocker: a transaction sees one snapshot of pg_stat_activity)
                await wait_for(lambda: _lock_waiters(watcher), what="three requests waiting on the lock")
            finally:
                await watcher.close()
            assert not any(r.done() for r in requests)
            node.proc.send_signal(signal.SIGTERM)
            await _printed(node, "shutting down")  # the node is stopping with the requests in flight
            await tx.rollback()  # let the in-flight requests finish
            await blocker.close()
            for task in requests:
                resp = await task
                assert resp.status == 200
                assert (await resp.json())["total"] == 33
        rest, _ = await asyncio.wait_for(node.proc.communicate(), 60)
        assert node.proc.returncode == 0, rest.decode()
        assert "stopped" in rest.decode()
    finally:
        if node.proc.returncode is None:
            node.proc.kill()
    assert not (pgdata / "postmaster.pid").exists()  # PostgreSQL stopped cleanly

    node = await start_node(data_dir)  # no manual cleanup between runs
    try:
        async with aiohttp.ClientSession() as http:
            assert (await (await http.get(node.url("/api/v1/hotlines"))).json())["total"] == 33
    finally:
        out = await node.stop()
    assert node.proc.returncode == 0, out
    assert not (pgdata / "postmaster.pid").exists()


async def test_restart_after_kill_needs_no_cleanup(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    node = await start_node(data_dir)
    node.proc.kill()  # no chance to clean up: postmaster.pid and the server are left behind
    await node.proc.wait()
    node = await start_node(data_dir)
    try:
        async with aiohttp.ClientSession() as http:
            assert (await http.get(node.url("/healthz"))).status == 200
    finally:
        out = await node.stop()
    assert node.proc.returncode == 0, out
    # the server the killed node left behind is stopped by the next one: nothing outlives a run
    assert not (data_dir / "pg" / "postmaster.pid").exists(), out
