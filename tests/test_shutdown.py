"""``hotline serve`` on the embedded PostgreSQL, stopped with SIGTERM while requests
are in flight: they complete, PostgreSQL stops cleanly, and the next start needs no
manual cleanup."""

import asyncio
import signal
from pathlib import Path

import aiohttp
import asyncpg
from support import start_node


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
            await asyncio.sleep(0.5)
            assert not any(r.done() for r in requests)
            node.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
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
