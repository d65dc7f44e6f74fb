"""``make run`` (``hotline serve --demo``) with a real Asterisk at hand: the demo runs
its own telephone exchange, a visitor's agent who clicks 置闲 becomes a queue member,
a citizen's call goes Asterisk → FastAGI → queue → a demo agent's phone and is
recorded, and stopping the node stops Asterisk too."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from support import start_node, wait_for

from hotline.calls.recordings import find_recording
from hotline.telephony.sandbox import AsteriskSandbox, free_port


async def _recorded(root: Path, uid: str, started_at: object) -> bool:
    path = find_recording(root, uid, started_at)  # type: ignore[arg-type]
    return path is not None and path.stat().st_size > 44  # more than a WAV header: sound was written


async def test_make_run_routes_demo_calls_through_a_real_asterisk(tmp_path: Path, asterisk_install: object) -> None:
    data_dir = tmp_path / "var"
    pbx_root = data_dir / "pbx"
    node = await start_node(data_dir, "--demo", env={"HOTLINE_AGI_PORT": str(free_port())})
    try:
        assert "via a real Asterisk" in node.text, node.text
        password = re.search(r"^\s+demo-agent\s+(\S+)\s", node.text, re.M)
        assert password is not None, node.text
        pbx = AsteriskSandbox(pbx_root)  # a handle on the demo's exchange (its control socket)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            resp = await http.post(node.url("/api/v1/auth/login"),
                                   json={"username": "demo-agent", "password": password.group(1)})
            csrf = (await resp.json())["csrf_token"]
            resp = await http.put(node.url("/api/v1/console/seat"), json={"state": "ready"},
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
            async def answered() -> asyncpg.Record | None:
                row = await conn.fetchrow(
                    "SELECT route, agent_id, answered_by, queued_at, call_uid, started_at FROM calls "
                    "WHERE caller_number = $1", "13900007777")
                return row if row is not None and row["agent_id"] is not None else None

            row = await wait_for(answered, timeout=60, what="a demo phone answering the call", interval=0.5)
        finally:
            await conn.close()
        assert row["route"] == "platform" and row["queued_at"] is not None
        assert row["answered_by"].startswith("Local/80")
        # the demo supervisor listens in (监听) from the supervisor's own demo phone
        supervisor = re.search(r"^\s+demo-supervisor\s+(\S+)\s", node.text, re.M)
        assert supervisor is not None, node.text
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            resp = await http.post(node.url("/api/v1/auth/login"),
                                   json={"username": "demo-supervisor", "password": supervisor.group(1)})
            csrf = (await resp.json())["csrf_token"]
            resp = await http.post(node.url(f"/api/v1/seats/{row['agent_id']}/monitor"), json={"mode": "listen"},
                                   headers={"X-CSRF-Token": csrf})
            body = await resp.json()
        assert resp.status == 200 and body["phone"] == "Local/8901@agents", body

        async def spying() -> bool:
            out = await asyncio.to_thread(pbx.rx, "core show channels concise")
            return f"!ChanSpy!{row['answered_by']}-,bqES!" in out

        await wait_for(spying, timeout=30, what="the supervisor's phone spying on the call", interval=0.5)
        # the demo phones keep sending their tone after an operator's dialplan reload
        await asyncio.to_thread(pbx.rx, "dialplan reload")
        assert "MEDIA=1" in (await asyncio.to_thread(pbx.rx, "dialplan show globals")).replace(" ", "")
        # and recorded (全程录音) where make run keeps its recordings, once the demo phone hangs up
        await wait_for(lambda: _recorded(data_dir / "recordings", row["call_uid"], row["started_at"]),
                       timeout=60, what="the demo call's recording", interval=0.5)
    finally:
        out = await node.stop()
    assert node.proc.returncode == 0, out
    # the node stopped its exchange with itself
    pid_file = pbx_root / "run" / "asterisk.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _database_url(data_dir: Path) -> str:
    return f"postgresql://postgres@/hotline?host={data_dir / 'pg'}"
