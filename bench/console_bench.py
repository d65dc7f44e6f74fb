"""Console benchmark: screen-pop latency and wallboard fan-out under load.

* Screen-pop: 200 agents hold a console WebSocket each; for each call the AGI
  peer plays Asterisk against the real FastAGI server (``incoming`` then the
  queue member's ``agent_connect``); we time from the start of the ``incoming``
  request to the ``screen_pop`` message arriving on that agent's socket
  (p50/p95/max), and also from ``agent_connect`` alone.
* Wallboard: 200 supervisors hold a socket each; a call enters the queue
  (``incoming``) and we time until every supervisor socket got the wallboard
  showing it (per-socket p50/p95 and time to the last socket). The hub's
  rate limit (at most one push per 200 ms) is part of that figure on purpose.
* First page ready: headless chromium loads /console/agent and
  /console/supervisor signed in, until the page says it is ready.

The node runs as a separate process (``hotline serve``) against an embedded
PostgreSQL, so client and server do not share an event loop (they still share
the machine's cores). Usage: ``python bench/console_bench.py [--agents 200]
[--supervisors 200] [--calls 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hotline.agi.peer import run_call, simulate_call  # noqa: E402
from hotline.auth.model import User  # noqa: E402
from hotline.auth.sessions import create_session  # noqa: E402
from hotline.auth.users import hash_password  # noqa: E402
from hotline.db.embedded import EmbeddedPostgres  # noqa: E402
from hotline.db.migrations import migrate  # noqa: E402
from hotline.db.pool import connect  # noqa: E402
from hotline.registry import load_registry, sync_registry  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(name: str, ms: list[float]) -> str:
    return (f"{name}: n={len(ms)} p50={statistics.median(ms):.1f} ms p95={pct(ms, 0.95):.1f} ms "
            f"max={max(ms):.1f} ms")


async def make_users(pool: asyncpg.Pool, prefix: str, role: str, n: int) -> list[tuple[int, str]]:
    digest = hash_password("bench-password-123")
    out = []
    for i in range(n):
        user_id = await pool.fetchval(
            "INSERT INTO users (username, display_name, password_hash, roles) VALUES ($1, $1, $2, $3) RETURNING id",
            f"{prefix}{i:03d}", digest, [role])
        user = User(user_id, f"{prefix}{i:03d}", f"{prefix}{i:03d}", frozenset([role]))
        token, _ = await create_session(pool, user, absolute=timedelta(hours=2))
        out.append((user_id, token))
    return out


class Socket:
    """A console WebSocket read continuously (so pings are answered) into a queue of
    (arrival time, message)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.queue.put_nowait((time.perf_counter(), json.loads(msg.data)))

    async def next(self, kind: str, timeout: float = 10.0) -> tuple[float, dict]:
        while True:
            at, msg = await asyncio.wait_for(self.queue.get(), timeout)
            if msg["type"] == kind:
                return at, msg

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


async def open_socket(http: aiohttp.ClientSession, base: str, token: str) -> Socket:
    ws = await http.ws_connect(f"{base}/api/v1/console/ws", headers={"Cookie": f"hotline_session={token}"})
    sock = Socket(ws)
    await sock.next("hello")
    return sock


async def bench_screen_pop(pool: asyncpg.Pool, http: aiohttp.ClientSession, base: str, agi_port: int,
                           agents: list[tuple[int, str]], calls: int) -> dict[str, list[float]]:
    sockets = []
    for i, (user_id, token) in enumerate(agents):
        await pool.execute(
            """INSERT INTO seats (user_id, state, interface) VALUES ($1, 'ready', $2)
               ON CONFLICT (user_id) DO UPDATE SET state = 'ready', interface = EXCLUDED.interface""",
            user_id, f"PJSIP/{9000 + i}")
        sockets.append(await open_socket(http, base, token))
    print(f"{len(sockets)} agent sockets open", flush=True)
    from_incoming: list[float] = []
    from_connect: list[float] = []
    for n in range(calls):
        i = n % len(agents)
        ws = sockets[i]
        uid = f"bench-{n}-{time.time():.6f}"
        t0 = time.perf_counter()
        await simulate_call("127.0.0.1", agi_port, dialled="12333", caller=f"1380000{n:04d}",
                            answer_interface=None, hangup=False, uniqueid=uid)
        t1 = time.perf_counter()
        await run_call("127.0.0.1", agi_port, "agent_connect",
                       {"agi_channel": f"PJSIP/{9000 + i}-{n:08x}", "agi_uniqueid": f"{uid}-agent"}, [uid])
        t2, _ = await ws.next("screen_pop")
        from_incoming.append((t2 - t0) * 1000)
        from_connect.append((t2 - t1) * 1000)
        # hang up so the seat is free again (and the next round finds it ready)
        await run_call("127.0.0.1", agi_port, "hangup", {"agi_uniqueid": uid}, [uid, "", "", "16", ""])
        await pool.execute("UPDATE seats SET state = 'ready', current_call_id = NULL WHERE user_id = $1",
                           agents[i][0])
    for ws in sockets:
        await ws.close()
    return {"incoming→screen_pop": from_incoming, "agent_connect→screen_pop": from_connect}


async def bench_wallboard(http: aiohttp.ClientSession, base: str, agi_port: int,
                          supervisors: list[tuple[int, str]], rounds: int) -> dict[str, list[float]]:
    sockets = [await open_socket(http, base, token) for _, token in supervisors]
    for sock in sockets:  # the snapshot each socket gets on connecting
        await sock.next("wallboard")
    print(f"{len(sockets)} supervisor sockets open", flush=True)
    per_socket: list[float] = []
    last_socket: list[float] = []
    for r in range(rounds):
        await asyncio.sleep(0.5)
        for sock in sockets:  # forget pushes from the previous round
            while not sock.queue.empty():
                sock.queue.get_nowait()
        t0 = time.perf_counter()
        await run_call("127.0.0.1", agi_port, "incoming?line=12345",
                       {"agi_uniqueid": f"wb-{r}-{time.time():.6f}", "agi_callerid": f"1390000{r:04d}",
                        "agi_dnid": "12345"})

        async def until_shows(sock: Socket, t0: float = t0, waiting: int = r + 1) -> float:
            while True:
                at, msg = await sock.next("wallboard")
                if msg["wallboard"]["waiting_total"] >= waiting:
                    return (at - t0) * 1000

        times = await asyncio.gather(*(until_shows(sock) for sock in sockets))
        per_socket.extend(times)
        last_socket.append(max(times))
    for sock in sockets:
        await sock.close()
    return {"call queued→wallboard (each socket)": per_socket, f"call queued→wallboard (last of {len(sockets)})": last_socket}


async def bench_first_page(base: str, token: str, supervisor_token: str) -> dict[str, list[float]]:
    from playwright.async_api import async_playwright

    out: dict[str, list[float]] = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        for page_name, tok in (("agent", token), ("supervisor", supervisor_token)):
            times = []
            for _ in range(11):
                context = await browser.new_context()
                await context.add_cookies([{"name": "hotline_session", "value": tok, "url": base}])
                page = await context.new_page()
                t0 = time.perf_counter()
                await page.goto(f"{base}/console/{page_name}")
                await page.wait_for_selector("body[data-ready='1']")
                times.append((time.perf_counter() - t0) * 1000)
                await context.close()
            out[f"first page ready /console/{page_name} (cold context)"] = times[1:]  # first load warms the server
        await browser.close()
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--supervisors", type=int, default=200)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    pg = EmbeddedPostgres(tmp / "pg")
    await pg.start()
    server: subprocess.Popen[bytes] | None = None
    try:
        url = await pg.ensure_database("console_bench")
        conn = await connect(url)
        await migrate(conn, ROOT / "migrations")
        await sync_registry(conn, load_registry(ROOT / "config" / "hotlines.yaml"))
        await conn.close()
        web_port, agi_port = free_port(), free_port()
        env = dict(os.environ, HOTLINE_DATABASE_URL=url, HOTLINE_DATA_DIR=str(tmp / "var"),
                   HOTLINE_WEB_PORT=str(web_port), HOTLINE_AGI_PORT=str(agi_port), HOTLINE_LOG_LEVEL="WARNING",
                   HOTLINE_DB_POOL_MAX="30")
        server = subprocess.Popen([sys.executable, "-m", "hotline", "serve", "--no-scheduler", "--no-workers"],
                                  env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{web_port}"
        pool = await asyncpg.create_pool(url, min_size=2, max_size=10)
        assert pool is not None
        agents = await make_users(pool, "agent", "agent", args.agents)
        supervisors = await make_users(pool, "sup", "supervisor", args.supervisors)
        print(f"{len(agents)} agents and {len(supervisors)} supervisors signed in", flush=True)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            results: dict[str, list[float]] = {}
            results |= await bench_first_page(base, agents[0][1], supervisors[0][1])
            print("first page timed", flush=True)
            results |= await bench_screen_pop(pool, http, base, agi_port, agents, args.calls)
            results |= await bench_wallboard(http, base, agi_port, supervisors, args.rounds)
        await pool.close()
        print(f"\nconsole bench: {args.agents} agents, {args.supervisors} supervisors, {os.cpu_count()} CPUs")
        for name, ms in results.items():
            print("  " + summary(name, ms))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        await pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
