"""Ingest benchmark: call records through the signed HTTP API vs row-by-row INSERT vs
raw COPY, and the lag from ingest to a feed subscriber.

* API: ``--records`` call records in batches of ``--batch`` (JSON, HMAC-signed) with
  ``--concurrency`` requests in flight, against a ``hotline serve`` node running as
  a separate process (records/s, batch latency p50/p99);
* row-by-row: one autocommitted ``INSERT`` per record into the same table
  (``subcenter_calls``, triggers included) for ``--rowbyrow`` records, on
  ``--concurrency`` connections;
* raw COPY: binary ``COPY`` straight into the same table in chunks of ``--batch``
  on ``--concurrency`` connections (the ceiling: no HTTP, no validation, no
  receipts, no idempotency check);

All data is generated before the clocks start, so the client's own work is only
signing and sending (API) or encoding rows (COPY, INSERT).
* feed lag: a supervisor's SSE subscriber on ``/api/v1/feed`` while batches of
  ``--lag-batch`` records are sent every ``--lag-interval`` s; lag = time the last
  record of a batch reaches the subscriber minus the time its POST was sent (and
  minus the time its answer arrived).

Everything runs on an embedded PostgreSQL in a temporary directory. Usage:
``python bench/ingest_bench.py [--records 1000000] [--batch 1000] [--concurrency 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hotline.auth.users import create_user  # noqa: E402
from hotline.config import load_settings  # noqa: E402
from hotline.db.embedded import EmbeddedPostgres  # noqa: E402
from hotline.db.migrations import migrate  # noqa: E402
from hotline.db.pool import connect, create_pool  # noqa: E402
from hotline.ingest.keys import add_source  # noqa: E402
from hotline.ingest.signing import sign_headers  # noqa: E402
from hotline.registry import load_registry, sync_registry  # noqa: E402

PASSWORD = "bench-password-123"
BASE = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
COLUMNS = ("source", "source_id", "version", "seq", "hotline_number", "caller_number", "state", "started_at",
           "answered_at", "ended_at", "talk_seconds", "region", "data")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def record(prefix: str, i: int) -> dict[str, Any]:
    start = BASE + timedelta(seconds=i % 80000)
    return {
        "source_id": f"{prefix}{i}", "version": 1, "seq": i, "hotline_number": "12366",
        "caller_number": f"13{random.randint(100000000, 999999999)}", "state": "completed",
        "started_at": start.isoformat(), "answered_at": (start + timedelta(seconds=8)).isoformat(),
        "ended_at": (start + timedelta(seconds=190)).isoformat(), "talk_seconds": 182, "region": "330902",
        "agent": f"A{i % 300:03d}", "unit_code": "tax",
    }


def row_of(r: dict[str, Any], i: int) -> tuple:
    """The same record as a subcenter_calls row (data holds the fields beside the columns)."""
    return ("tax-sub", r["source_id"], 1, i, "12366", r["caller_number"], "completed",
            datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["answered_at"]),
            datetime.fromisoformat(r["ended_at"]), Decimal(182), "330902",
            json.dumps({"agent": r["agent"], "unit_code": r["unit_code"]}))


async def reset(conn) -> None:
    await conn.execute("TRUNCATE subcenter_calls, ingest_receipts, ingest_batches, change_log CASCADE")
    await conn.execute("VACUUM ANALYZE subcenter_calls")


async def _parallel(jobs: list, concurrency: int, work) -> float:
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def bench_copy(url: str, chunks: list[list[tuple]], concurrency: int) -> float:
    """COPY (binary) straight into subcenter_calls, one chunk per statement, ``concurrency`` connections."""
    conns = [await asyncpg.connect(url) for _ in range(concurrency)]  # no JSON codec: jsonb goes as text
    free = list(conns)

    async def work(rows: list[tuple]) -> None:
        conn = free.pop()
        try:
            await conn.copy_records_to_table("subcenter_calls", records=rows, columns=COLUMNS)
        finally:
            free.append(conn)

    try:
        return await _parallel(chunks, concurrency, work)
    finally:
        for conn in conns:
            await conn.close()


async def bench_rowbyrow(url: str, rows: list[tuple], concurrency: int) -> float:
    """One autocommitted INSERT per record, ``concurrency`` connections."""
    conns = [await asyncpg.connect(url) for _ in range(concurrency)]
    free = list(conns)
    sql = (f"INSERT INTO subcenter_calls ({', '.join(COLUMNS)}) VALUES "
           "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")

    async def work(row: tuple) -> None:
        conn = free.pop()
        try:
            await conn.execute(sql, *row)
        finally:
            free.append(conn)

    try:
        return await _parallel(rows, concurrency, work)
    finally:
        for conn in conns:
            await conn.close()


async def bench_api(urls: list[str], bodies: list[bytes], key: str, concurrency: int
                    ) -> tuple[float, list[float], dict]:
    latencies: list[float] = []
    counts = {"accepted": 0, "updated": 0, "duplicate": 0, "rejected": 0}
    path = "/api/v1/ingest/calls"

    turn = iter(range(10**9))

    async def work(body: bytes) -> None:
        headers = {**sign_headers("tax-sub", key, "POST", path, body), "Content-Type": "application/json"}
        url = urls[next(turn) % len(urls)]  # round robin over the web nodes, like a balancer
        t0 = time.perf_counter()
        async with session.post(url + path, data=body, headers=headers) as resp:
            answer = await resp.json()
            assert resp.status == 200, answer
        latencies.append(time.perf_counter() - t0)
        for k, v in answer["counts"].items():
            counts[k] += v

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        elapsed = await _parallel(bodies, concurrency, work)
    return elapsed, latencies, counts


async def bench_feed_lag(url: str, post_url: str, key: str, cookie: str, batches: int, size: int,
                         interval: float) -> tuple[list[float], list[float]]:
    sent: dict[int, float] = {}
    answered: dict[int, float] = {}
    lag_sent: list[float] = []
    lag_answered: list[float] = []
    done = asyncio.Event()
    path = "/api/v1/ingest/calls"

    async def subscriber(session: aiohttp.ClientSession, ready: asyncio.Event) -> None:
        async with session.get(url + "/api/v1/feed", params={"entities": "subcenter_call"},
                               headers={"Accept": "text/event-stream"}) as resp:
            ready.set()
            data = None
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("data:"):
                    data = line[5:].strip()
                elif line == "" and data:
                    change = json.loads(data)
                    data = None
                    if "entity" not in change:
                        continue
                    sid = change["data"]["source_id"]  # lag-<batch>-<i>
                    _, b, i = sid.split("-")
                    if int(i) == size - 1:
                        now = time.perf_counter()
                        lag_sent.append(now - sent[int(b)])
                        if int(b) in answered:
                            lag_answered.append(now - answered[int(b)])
                        if len(lag_sent) == batches:
                            done.set()
                            return

    async with aiohttp.ClientSession(cookies={"hotline_session": cookie},
                                     timeout=aiohttp.ClientTimeout(total=600)) as feed_session, \
            aiohttp.ClientSession() as session:  # the sender is a sub-centre, not a browser session
        ready = asyncio.Event()
        task = asyncio.create_task(subscriber(feed_session, ready))
        await ready.wait()
        await asyncio.sleep(0.5)
        for b in range(batches):
            body = json.dumps({"records": [record(f"lag-{b}-", i) | {"source_id": f"lag-{b}-{i}"}
                                           for i in range(size)]}).encode()
            headers = {**sign_headers("tax-sub", key, "POST", path, body), "Content-Type": "application/json"}
            sent[b] = time.perf_counter()
            async with session.post(post_url + path, data=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                answered[b] = time.perf_counter()
            await asyncio.sleep(interval)
        await asyncio.wait_for(done.wait(), 60)
        task.cancel()
    return lag_sent, lag_answered


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rowbyrow", type=int, default=20_000)
    parser.add_argument("--servers", type=int, default=1, help="web nodes (processes) the batches are spread over; "
                        "the feed subscriber sits on the first, the lag batches go to the last")
    parser.add_argument("--lag-batches", type=int, default=200)
    parser.add_argument("--lag-batch", type=int, default=100)
    parser.add_argument("--lag-interval", type=float, default=0.1)
    args = parser.parse_args()
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # clean up on SIGTERM too
    tmp = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    embedded = EmbeddedPostgres(tmp)
    await embedded.start()
    procs: list[subprocess.Popen] = []
    try:
        url = await embedded.ensure_database("bench")
        settings = load_settings(env={"HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": str(tmp)})
        conn = await connect(url)
        await migrate(conn, ROOT / "migrations")
        await sync_registry(conn, load_registry(ROOT / "config" / "hotlines.yaml"))
        _, key = await add_source(conn, settings, "tax-sub", "bench", hotline_numbers=["12366"],
                                  rate_per_minute=1_000_000)
        await conn.execute("UPDATE ingest_sources SET rate_per_minute = 1000000")
        pool = await create_pool(url, settings, min_size=1, max_size=2)
        await create_user(pool, "bench-sup", PASSWORD, ["supervisor"])
        await pool.close()

        n = args.records
        print(f"# machine: {os.cpu_count()} cores (shared with other work), embedded PostgreSQL 16, "
              f"batch {args.batch}, {args.concurrency} in flight; generating {n} records...", flush=True)
        records = [record("r-", i) for i in range(n)]
        rows = [row_of(r, i) for i, r in enumerate(records)]
        chunks = [rows[i:i + args.batch] for i in range(0, n, args.batch)]
        bodies = [json.dumps({"records": records[i:i + args.batch]}).encode() for i in range(0, n, args.batch)]
        del records

        await reset(conn)
        t = await bench_copy(url, chunks, args.concurrency)
        copy_rate = n / t
        print(f"raw COPY into subcenter_calls: {n} records in {t:.1f} s = {copy_rate:,.0f} records/s", flush=True)
        await reset(conn)
        await conn.execute("ALTER TABLE subcenter_calls DISABLE TRIGGER USER")
        t = await bench_copy(url, chunks, args.concurrency)
        await conn.execute("ALTER TABLE subcenter_calls ENABLE TRIGGER USER")
        print(f"  (reference: raw COPY with the change capture off: {n / t:,.0f} records/s)", flush=True)
        await reset(conn)
        m = min(args.rowbyrow, n)
        t = await bench_rowbyrow(url, rows[:m], args.concurrency)
        print(f"row-by-row INSERT (autocommit): {m} records in {t:.1f} s = {m / t:,.0f} records/s", flush=True)
        del rows, chunks
        await reset(conn)

        env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": str(tmp),
               "HOTLINE_LOG_LEVEL": "WARNING"}
        bases = []
        for _ in range(args.servers):
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, "-m", "hotline", "serve", "--no-agi", "--no-scheduler",
                                           "--no-workers", "--web-port", str(port)], cwd=ROOT, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            bases.append(f"http://127.0.0.1:{port}")
        async with aiohttp.ClientSession() as session:
            for base in bases:
                for _ in range(300):
                    try:
                        async with session.get(base + "/healthz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
            async with session.post(bases[0] + "/api/v1/auth/login",
                                    json={"username": "bench-sup", "password": PASSWORD}) as resp:
                assert resp.status == 200
                cookie = resp.cookies["hotline_session"].value

        t, lat, counts = await bench_api(bases, bodies, key, args.concurrency)
        rate = n / t
        print(f"HTTP API ({args.servers} web node(s)): {n} records in {t:.1f} s = {rate:,.0f} records/s; "
              f"batch latency p50 {pct(lat, 0.5) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms; {counts}")
        print(f"API / raw COPY = {rate / copy_rate:.0%}")
        stored = await conn.fetchval("SELECT count(*) FROM subcenter_calls")
        print(f"stored: {stored} records; change-log rows: {await conn.fetchval('SELECT count(*) FROM change_log')}")

        lag_sent, lag_answered = await bench_feed_lag(bases[0], bases[-1], key, cookie, args.lag_batches,
                                                      args.lag_batch, args.lag_interval)
        where = "subscriber and sender on one node" if len(bases) == 1 else "subscriber on node 1, sender on node 2"
        print(f"feed lag ({args.lag_batches} batches of {args.lag_batch}, one every {args.lag_interval} s; {where}), "
              f"from POST sent: p50 {pct(lag_sent, 0.5) * 1000:.0f} ms, p99 {pct(lag_sent, 0.99) * 1000:.0f} ms; "
              f"from POST answered: p50 {pct(lag_answered, 0.5) * 1000:.0f} ms, "
              f"p99 {pct(lag_answered, 0.99) * 1000:.0f} ms")
        await conn.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        await embedded.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
