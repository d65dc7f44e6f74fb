"""``make run`` (``hotline serve --demo``) with a real Asterisk at hand: the demo runs
its own telephone exchange, a visitor's agent who clicks 置闲 becomes a queue member,
a citizen's call goes Asterisk → FastAGI → queue → a demo agent's phone and is
recorded, and stopping the node stops Asterisk too."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from hotline.config import PROJECT_ROOT
from hotline.telephony.sandbox import AsteriskMissing, AsteriskSandbox, find_asterisk, free_port

STARTUP_LIMIT = 120  # a bound on waiting, not a performance assertion


@pytest.fixture
def asterisk() -> object:
    try:
        return find_asterisk()
    except AsteriskMissing as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs a real Asterisk: {exc}")
        pytest.skip(str(exc))


async def test_make_run_routes_demo_calls_through_a_real_asterisk(tmp_path: Path, asterisk: object) -> None:
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_WEB_PORT="0", HOTLINE_AGI_PORT=str(free_port()))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline", "serve", "--migrate", "--demo", cwd=PROJECT_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    assert proc.stdout is not None
    output: list[str] = []
    pbx_root = data_dir / "pbx"
    try:
        port = None
        async with asyncio.timeout(STARTUP_LIMIT):
            while line := (await proc.stdout.readline()).decode():
                output.append(line)
                if match := re.search(r"web console and API: http://[\d.]+:(\d+)/", line):
                    port = int(match.group(1))
                if port and "stop with Ctrl-C" in line:
                    break
        text = "".join(output)
        assert port is not None, text
        assert "via a real Asterisk" in text, text
        password = re.search(r"^\s+demo-agent\s+(\S+)\s", text, re.M)
        assert password is not None, text
        pbx = AsteriskSandbox(pbx_root)  # a handle on the demo's exchange (its control socket)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            resp = await http.post(f"{base}/api/v1/auth/login",
                                   json={"username": "demo-agent", "password": password.group(1)})
            csrf = (await resp.json())["csrf_token"]
            resp = await http.put(f"{base}/api/v1/console/seat", json={"state": "ready"},
                                  headers={"X-CSRF-Token": csrf})
            body = await resp.json()
            assert resp.status == 200 and body["pbx_updated"] is True, body
        phone = body["seat"]["interface"]
        assert phone == "Local/8001@agents"
        assert phone in await asyncio.to_thread(pbx.queue_members, "hotline-12345")

        # a citizen calls 12345: Asterisk asks the node, queues the call, a demo phone answers
        await asyncio.to_thread(pbx.call, "12345", "13900007777", stay=30)
        conn = await asyncpg.connect(_database_url(data_dir))
        try:
            async with asyncio.timeout(60):
                while True:
                    row = await conn.fetchrow(
                        "SELECT route, agent_id, answered_by, queued_at FROM calls WHERE caller_number = $1",
                        "13900007777")
                    if row is not None and row["agent_id"] is not None:
                        break
                    await asyncio.sleep(0.5)
        finally:
            await conn.close()
        assert row["route"] == "platform" and row["queued_at"] is not None
        assert row["answered_by"].startswith("Local/80")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                os.killpg(proc.pid, signal.SIGKILL)
    # the node stopped its exchange with itself
    pid_file = pbx_root / "run" / "asterisk.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _database_url(data_dir: Path) -> str:
    return f"postgresql://postgres@/hotline?host={data_dir / 'pg'}"
