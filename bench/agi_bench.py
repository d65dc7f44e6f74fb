#!/usr/bin/env python3
"""FastAGI benchmark: the full ``incoming`` flow (header block, line and caller
normalisation, blocklist and repeat-caller lookups, the call record INSERT, the
channel variables) over real sockets against real PostgreSQL, at concurrency 1,
50 and 500; then the same flow through the classic pyst2 entry point
(``agi_scripts/incoming.py``) spawned as one process per call.

    .venv/bin/python bench/agi_bench.py                 # embedded PostgreSQL in a temp dir
    HOTLINE_DATABASE_URL=postgresql://... .venv/bin/python bench/agi_bench.py
    .venv/bin/python bench/agi_bench.py --quick         # fewer calls

The server runs in its own process (so its RSS is its own); the load generator
is :mod:`hotline.agi.peer` in this process. Both share the machine with
PostgreSQL: on a 2-core box the three compete for CPU, which the figures include.
Prints one table; results and method go to docs/bench/agi.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hotline.agi.peer import AgiPeer, asterisk_headers, classic_headers  # noqa: E402
from hotline.config import load_settings  # noqa: E402


def _rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    values = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def _cpu_seconds(pid: int) -> float:
    """user + system CPU time a process has used."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


# -- the server process -----------------------------------------------------------

async def serve(url: str, data_dir: str) -> None:
    from hotline.agi.service import AgiService
    from hotline.db import Database
    from hotline.db.pool import create_pool
    from hotline.logs import setup_logging
    from hotline.registry import load_registry
    from hotline.runtime import Runtime

    settings = load_settings(env={**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": data_dir,
                                  "HOTLINE_AGI_PORT": "0", "HOTLINE_LOG_LEVEL": "WARNING"})
    setup_logging("WARNING")
    registry = load_registry(settings.registry_path)
    pool = await create_pool(url, settings, min_size=1, max_size=2)
    runtime = Runtime(settings, registry, Database(pool=pool, url=url))
    service = AgiService(runtime)  # what `hotline serve` runs: own pool, journal replay loop
    await service.start()
    assert service.server is not None
    print(f"READY {service.server.port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await service.stop()
    await pool.close()


# -- the load generator -----------------------------------------------------------

async def fastagi_level(port: int, numbers: list[str], calls: int, concurrency: int, tag: str,
                        hold: float = 0.0) -> dict[str, float]:
    rng = random.Random(concurrency)
    latencies: list[float] = []
    failures = journaled = 0
    active = 0
    peak = 0
    semaphore = asyncio.Semaphore(concurrency)

    async def slow_first_reply(command, peer):  # keeps sessions open to prove they are all held
        if not peer.channel_variables:
            await asyncio.sleep(hold)
        return None

    async def one(i: int) -> None:
        nonlocal failures, journaled, active, peak
        number = numbers[i % len(numbers)]
        headers = asterisk_headers(f"incoming?line={number}", port=port, uniqueid=f"{tag}-{i}",
                                   callerid=f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}", dnid=number)
        async with semaphore:
            active += 1
            peak = max(peak, active)
            started = time.perf_counter()
            peer = AgiPeer(responder=slow_first_reply if hold else None)
            t = await peer.run("127.0.0.1", port, headers, timeout=60)
            latencies.append(time.perf_counter() - started)
            active -= 1
            if t.outcome != "closed" or not t.var("HOTLINE_ROUTE"):
                failures += 1  # not routed: the dialplan's AGISTATUS path would queue it
            elif not t.var("HOTLINE_CALL_ID"):
                journaled += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    elapsed = time.perf_counter() - started
    return {"calls": calls, "concurrency": concurrency, "seconds": elapsed, "rate": calls / elapsed,
            "p50": _pct(latencies, 0.5) * 1000, "p99": _pct(latencies, 0.99) * 1000,
            "failures": failures, "journaled": journaled, "peak": peak}


async def classic_level(env: dict[str, str], numbers: list[str], calls: int, concurrency: int) -> dict[str, float]:
    script = str(ROOT / "agi_scripts" / "incoming.py")
    latencies: list[float] = []
    failures = journaled = 0
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        nonlocal failures, journaled
        number = numbers[i % len(numbers)]
        headers = classic_headers(script, args=[number], uniqueid=f"classic-{concurrency}-{i}-{uuid.uuid4().hex[:6]}")
        async with semaphore:
            started = time.perf_counter()
            t = await AgiPeer().run_process([sys.executable, script, number], headers, env=env)
            latencies.append(time.perf_counter() - started)
            if t.returncode != 0 or not t.var("HOTLINE_ROUTE"):
                failures += 1
                if failures == 1:
                    print(f"classic call failed: rc={t.returncode} outcome={t.outcome} "
                          f"stderr={t.stderr[-300:]!r}", file=sys.stderr)
            elif not t.var("HOTLINE_CALL_ID"):
                journaled += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    elapsed = time.perf_counter() - started
    return {"calls": calls, "concurrency": concurrency, "seconds": elapsed, "rate": calls / elapsed,
            "p50": _pct(latencies, 0.5) * 1000, "p99": _pct(latencies, 0.99) * 1000, "failures": failures,
            "journaled": journaled}


async def prepare_database(admin_url: str) -> tuple[str, str]:
    import asyncpg

    from hotline.db.migrations import migrate
    from hotline.db.pool import connect
    from hotline.registry import load_registry, sync_registry

    name = f"agi_bench_{os.getpid()}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
    finally:
        await conn.close()
    head, sep, query = admin_url.partition("?")
    url = f"{head.rsplit('/', 1)[0]}/{name}{sep}{query}"
    conn = await connect(url)
    try:
        await migrate(conn, ROOT / "migrations")
        await sync_registry(conn, load_registry(ROOT / "config" / "hotlines.yaml"))
    finally:
        await conn.close()
    return name, url


async def main(args: argparse.Namespace) -> None:
    import asyncpg

    from hotline.db.embedded import EmbeddedPostgres
    from hotline.registry import load_registry

    tmp = Path(tempfile.mkdtemp(prefix="agi-bench-"))
    embedded = None
    admin_url = os.environ.get("HOTLINE_DATABASE_URL", "")
    if not admin_url:
        embedded = EmbeddedPostgres(tmp)
        await embedded.start()
        admin_url = embedded.uri("postgres")
    name, url = await prepare_database(admin_url)
    numbers = [line.number for line in load_registry(ROOT / "config" / "hotlines.yaml")]
    data_dir = str(tmp / "var")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", url, "--data-dir", data_dir,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    ready = (await proc.stdout.readline()).decode().split()
    port = int(ready[1])
    scale = 0.2 if args.quick else 1.0
    rows = []
    try:
        await fastagi_level(port, numbers, 200, 20, "warmup")
        for concurrency, calls in ((1, 500), (50, 5000), (500, 5000)):
            cpu_before = _cpu_seconds(proc.pid)
            result = await fastagi_level(port, numbers, max(int(calls * scale), concurrency), concurrency,
                                         f"c{concurrency}")
            result["cpu_ms"] = (_cpu_seconds(proc.pid) - cpu_before) * 1000 / result["calls"]
            result["rss"], result["hwm"] = _rss_kib(proc.pid)
            rows.append(("FastAGI", result))
            await asyncio.sleep(6)  # let the node replay anything it journaled under overload
        cpu_before = _cpu_seconds(proc.pid)
        held = await fastagi_level(port, numbers, 500, 500, "held", hold=1.0)
        held["cpu_ms"] = (_cpu_seconds(proc.pid) - cpu_before) * 1000 / held["calls"]
        held["rss"], held["hwm"] = _rss_kib(proc.pid)
        rows.append(("FastAGI held 1 s", held))
        await asyncio.sleep(6)
        env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": data_dir}
        for concurrency in (1, 4):
            result = await classic_level(env, numbers, max(int(40 * scale), 8), concurrency)
            rows.append(("pyst2 process/call", result))
    finally:
        proc.stdin.close()
        await proc.wait()
    conn = await asyncpg.connect(url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM calls")
    finally:
        await conn.close()

    cpu = os.cpu_count()
    print(f"\nAGI benchmark: incoming flow, real PostgreSQL, {cpu} CPU(s), Python {sys.version.split()[0]}")
    print(f"{'transport':<20}{'conc':>6}{'calls':>7}{'setups/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'failed':>7}{'journaled':>10}{'RSS MiB':>9}{'peak MiB':>10}{'CPU ms/call':>12}")
    for label, r in rows:
        rss = f"{r['rss'] / 1024:.0f}" if "rss" in r else "-"
        hwm = f"{r['hwm'] / 1024:.0f}" if "hwm" in r else "-"
        conc = f"{r['concurrency']}" + (f" ({r['peak']} open)" if label.endswith("held 1 s") else "")
        cpu_ms = f"{r['cpu_ms']:.2f}" if "cpu_ms" in r else "-"
        rate = f"{r['rate']:.0f}" if r["rate"] >= 10 else f"{r['rate']:.2f}"
        print(f"{label:<20}{conc:>6}{r['calls']:>7}{rate:>10}{r['p50']:>9.1f}{r['p99']:>9.1f}"
              f"{r['failures']:>7}{r['journaled']:>10}{rss:>9}{hwm:>10}{cpu_ms:>12}")
    fast50 = next(r for label, r in rows if label == "FastAGI" and r["concurrency"] == 50)
    classic = [r for label, r in rows if label.startswith("pyst2")]
    best_classic = max(r["rate"] for r in classic)
    print(f"\nratio FastAGI (c=50) / best pyst2 process-per-call: {fast50['rate'] / best_classic:.0f}x "
          f"({fast50['rate']:.0f} vs {best_classic:.1f} setups/s); "
          f"p50 {fast50['p50']:.1f} ms vs {statistics.median(r['p50'] for r in classic):.0f} ms")
    print(f"call records stored: {stored} (journaled setups are replayed by the node; a record "
          "is never lost)")
    print(f"load average during the run (shared machine): {os.getloadavg()}")

    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    if embedded is not None:
        await embedded.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a fifth of the calls")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve and os.environ.get("AGI_BENCH_PROFILE"):
        import cProfile

        cProfile.run("asyncio.run(serve(ns.serve, ns.data_dir))", os.environ["AGI_BENCH_PROFILE"])
    elif ns.serve:
        asyncio.run(serve(ns.serve, ns.data_dir))
    else:
        asyncio.run(main(ns))
