"""FastAGI call set-up latency with and without a storm of bad sign-ins, side by side.

A real ``hotline serve`` node (web + FastAGI in ONE asyncio process, as in production;
scheduler and workers off) over embedded PostgreSQL. The load generator (this process)
places ``incoming`` FastAGI calls through :mod:`hotline.agi.peer` at a fixed
concurrency and measures each call set-up (connect → headers → every command answered
→ close), first alone, then while 50 clients keep signing in with wrong passwords.

Every bad sign-in is made to cost a full argon2 verification: each uses a new
username and a new ``X-Forwarded-For`` address, and the node trusts 127.0.0.1 as a
proxy (``[web] trusted_proxies``), so the throttle never short-cuts it. That is the
worst case for the event loop; a real storm from one address is throttled after 20.

    .venv/bin/python bench/signin_storm_bench.py            # 400 calls per phase
    .venv/bin/python bench/signin_storm_bench.py --calls 1000 --concurrency 10

Prints one table; results and method go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from agi_bench import _pct, prepare_database  # noqa: E402

from hotline.agi.peer import AgiPeer, asterisk_headers  # noqa: E402

STORM_CLIENTS = 50


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_port(port: int, proc: asyncio.subprocess.Process, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise SystemExit(f"the node exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise SystemExit(f"port {port} did not open within {seconds} s")


async def calls_phase(port: int, numbers: list[str], calls: int, concurrency: int, tag: str) -> dict[str, float]:
    rng = random.Random(tag)
    latencies: list[float] = []
    failures = 0
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        nonlocal failures
        number = numbers[i % len(numbers)]
        headers = asterisk_headers(f"incoming?line={number}", port=port, uniqueid=f"{tag}-{i}",
                                   callerid=f"13{rng.randrange(10**9):09d}", dnid=number)
        async with semaphore:
            started = time.perf_counter()
            t = await AgiPeer().run("127.0.0.1", port, headers, timeout=60)
            latencies.append(time.perf_counter() - started)
            if t.outcome != "closed" or not t.var("HOTLINE_ROUTE"):
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    elapsed = time.perf_counter() - started
    return {"calls": calls, "rate": calls / elapsed, "p50": _pct(latencies, 0.5) * 1000,
            "p99": _pct(latencies, 0.99) * 1000, "max": max(latencies) * 1000, "failures": failures}


async def storm(web_port: int, stop: asyncio.Event, statuses: dict[int, int]) -> None:
    url = f"http://127.0.0.1:{web_port}/api/v1/auth/login"

    async def client(n: int) -> None:
        i = 0
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                i += 1
                body = {"username": f"guess-{n}-{i}", "password": f"wrong-password-{i}"}
                headers = {"X-Forwarded-For": f"10.{n}.{i // 250 % 250}.{i % 250 + 1}"}
                async with session.post(url, json=body, headers=headers) as resp:
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                    await resp.read()

    await asyncio.gather(*(client(n) for n in range(STORM_CLIENTS)))


async def main(args: argparse.Namespace) -> None:
    from hotline.db.embedded import EmbeddedPostgres
    from hotline.registry import load_registry

    tmp = Path(tempfile.mkdtemp(prefix="signin-storm-"))
    embedded = EmbeddedPostgres(tmp / "pg")
    await embedded.start()
    proc = None
    try:
        _, url = await prepare_database(embedded.uri("postgres"))
        numbers = [ln.number for ln in load_registry(ROOT / "config" / "hotlines.yaml")
                   if ln.mode.value != "subcenter"]
        config = tmp / "hotline.toml"
        config.write_text((ROOT / "config" / "hotline.toml").read_text(encoding="utf-8").replace(
            "trusted_proxies = []", 'trusted_proxies = ["127.0.0.1/32"]').replace(
            "signin_concurrency = 2", f"signin_concurrency = {args.signin_concurrency}"), encoding="utf-8")
        web_port, agi_port = _free_port(), _free_port()
        env = {**os.environ, "HOTLINE_CONFIG": str(config), "HOTLINE_DATABASE_URL": url,
               "HOTLINE_DATA_DIR": str(tmp / "var"), "HOTLINE_LOG_LEVEL": "WARNING"}
        proc = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv" / "bin" / "hotline"), "serve", "--no-scheduler", "--no-workers",
            "--web-port", str(web_port), "--agi-port", str(agi_port), env=env,
            stdout=asyncio.subprocess.DEVNULL)
        await _wait_port(web_port, proc)
        await _wait_port(agi_port, proc)
        await calls_phase(agi_port, numbers, 50, args.concurrency, "warm")

        quiet = await calls_phase(agi_port, numbers, args.calls, args.concurrency, "quiet")
        stop, statuses = asyncio.Event(), {}
        storming = asyncio.create_task(storm(web_port, stop, statuses))
        await asyncio.sleep(2.0)  # the storm at full strength before the calls start
        started = time.perf_counter()
        stormy = await calls_phase(agi_port, numbers, args.calls, args.concurrency, "storm")
        storm_seconds = time.perf_counter() - started
        counted = dict(statuses)
        stop.set()
        await storming

        print(f"\nFastAGI `incoming` call set-ups, {args.calls} calls per phase at concurrency "
              f"{args.concurrency}; node = hotline serve (web + FastAGI, one loop), embedded PostgreSQL; "
              f"{os.cpu_count()} CPUs; [web] signin_concurrency = {args.signin_concurrency}\n")
        print(f"{'phase':<34} {'calls/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'failed':>7}")
        for name, r in (("alone", quiet), (f"with {STORM_CLIENTS} bad sign-ins in flight", stormy)):
            print(f"{name:<34} {r['rate']:>8.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['max']:>8.1f} "
                  f"{r['failures']:>7}")
        total = sum(counted.values())
        print(f"\nsign-in answers during the storm phase ({storm_seconds + 2.0:.1f} s): "
              + ", ".join(f"{k}: {v}" for k, v in sorted(counted.items())) + f" ({total / (storm_seconds + 2.0):.0f}/s)")
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await proc.wait()
        await embedded.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--signin-concurrency", type=int, default=2, help="[web] signin_concurrency of the node")
    asyncio.run(main(parser.parse_args()))
