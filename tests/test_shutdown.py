"""``hotline serve`` on the embedded PostgreSQL, stopped with SIGTERM while requests
are in flight: they complete, PostgreSQL stops cleanly, and the next start needs no
manual cleanup."""

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import asyncpg

from hotline.config import PROJECT_ROOT

STARTUP_LIMIT = 90  # a bound on waiting, not a performance assertion


class Node:
    def __init__(self, proc: asyncio.subprocess.Process, port: int, output: list[str]) -> None:
        self.proc, self.port, self.output = proc, port, output

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(self.proc.communicate(), 60)
        return "".join(self.output) + rest.decode()


async def start_node(data_dir: Path) -> Node:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_WEB_PORT="0", HOTLINE_AGI_PORT="0")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline", "serve", "--migrate", cwd=PROJECT_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output: list[str] = []
    port = None
    async with asyncio.timeout(STARTUP_LIMIT):
        while line := (await proc.stdout.readline()).decode():
            output.append(line)
            if match := re.search(r"web console and API: http://[\d.]+:(\d+)/", line):
                port = int(match.group(1))
            if port and "stop with Ctrl-C" in line:
                return Node(proc, port, output)
    proc.kill()
    raise AssertionError("server did not start:\n" + "".join(output))


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
