"""Ingest benchmark: call records through the signed HTTP API vs row-by-row INSERT vs
raw COPY, and the lag from ingest to a feed subscriber.

* API: ``--records`` call records in batches of ``--batch`` (JSON, HMAC-signed) with
  ``--concurrency`` requests in flight, against a ``hotline serve`` node running as
  a separate process (records/s, batch latency p50/p99);
* row-by-row: one autocommitted ``INSERT`` per record into the same table
  (``subcenter_calls``, triggers included) for ``--rowbyrow`` records;
* raw COPY: ``copy_records_to_table`` straight into the same table in chunks of
  ``--batch`` (the ceiling: no HTTP, no validation, no receipts);
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
from pathlib import Path
from typing import Any

import aiohttp

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


def row(prefix: str, i: int) -> tuple:
    r = record(prefix, i)
    return ("tax-sub", r["source_id"], 1, i, "12366", r["caller_number"], "completed",
            datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["answered_at"]),
            datetime.fromisoformat(r["ended_at"]), 182, "330902", json.dumps(r))


async def reset(conn) -> None:
    await conn.execute("TRUNCATE subcenter_calls, ingest_receipts, ingest_batches, change_log CASCADE")
    await conn.execute("VACUUM ANALYZE subcenter_calls")


async def bench_copy(conn, n: int, batch: int) -> float:
    await reset(conn)
    started = time.perf_counter()
    for start in range(0, n, batch):
        rows = [row("copy-", i) for i in range(start, min(n, start + batch))]
        async with conn.transaction():
            # data as text then cast, the way the API's staging does it
            await conn.execute(
                "CREATE TEMP TABLE bench_stage (source text, source_id text, version bigint, seq bigint, "
                "hotline_number text, caller_number text, state text, started_at timestamptz, "
                "answered_at timestamptz, ended_at timestamptz, talk_seconds numeric, region text, data text) "
                "ON COMMIT DROP")
            await conn.copy_records_to_table("bench_stage", records=rows, columns=COLUMNS)
            await conn.execute(f"INSERT INTO subcenter_calls ({', '.join(COLUMNS)}) "
                               f"SELECT {', '.join(c if c != 'data' else 'data::jsonb' for c in COLUMNS)} "
                               "FROM bench_stage")
    return time.perf_counter() - started


async def bench_copy_direct(conn, n: int, batch: int) -> float:
    """COPY straight into the table (jsonb needs the text format, so data goes as text via COPY ... csv)."""
    await reset(conn)
    import csv
    import io

    started = time.perf_counter()
    for start in range(0, n, batch):
        buf = io.StringIO()
        writer = csv.writer(buf)
        for i in range(start, min(n, start + batch)):
            r = row("copyd-", i)
            writer.writerow([*(v.isoformat() if isinstance(v, datetime) else v for v in r)])
        data = buf.getvalue().encode()
        await conn.copy_to_table("subcenter_calls", source=io.BytesIO(data), columns=COLUMNS, format="csv")
    return time.perf_counter() - started


async def bench_rowbyrow(conn, n: int) -> float:
    await reset(conn)
    sql = (f"INSERT INTO subcenter_calls ({', '.join(COLUMNS)}) VALUES "
           "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::text::jsonb)")
    started = time.perf_counter()
    for i in range(n):
        await conn.execute(sql, *row("row-", i))
    return time.perf_counter() - started


async def bench_api(url: str, key: str, n: int, batch: int, concurrency: int) -> tuple[float, list[float], dict]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for start in range(0, n, batch):
        queue.put_nowait(start)
    latencies: list[float] = []
    counts = {"accepted": 0, "updated": 0, "duplicate": 0, "rejected": 0}
    path = "/api/v1/ingest/calls"

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            try:
                start = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = json.dumps({"records": [record("api-", i) for i in range(start, min(n, start + batch))]}).encode()
            headers = {**sign_headers("tax-sub", key, "POST", path, body), "Content-Type": "application/json"}
            t0 = time.perf_counter()
            async with session.post(url + path, data=body, headers=headers) as resp:
                answer = await resp.json()
                assert resp.status == 200, answer
            latencies.append(time.perf_counter() - t0)
            for k, v in answer["counts"].items():
                counts[k] += v

    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, counts


async def bench_feed_lag(url: str, key: str, cookie: str, batches: int, size: int, interval: float
                         ) -> tuple[list[float], list[float]]:
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
            async with session.post(url + path, data=body, headers=headers) as resp:
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
    parser.add_argument("--copy-records", type=int, default=0, help="records for raw COPY (default: --records)")
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
    proc = None
    try:
        url = await embedded.ensure_database("bench")
        settings = load_settings(env={"HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": str(tmp),
                                      "HOTLINE_SECRET_KEY": "bench-secret"})
        conn = await connect(url)
        await migrate(conn, ROOT / "migrations")
        await sync_registry(conn, load_registry(ROOT / "config" / "hotlines.yaml"))
        _, key = await add_source(conn, settings, "tax-sub", "bench", hotline_numbers=["12366"],
                                  rate_per_minute=1_000_000)
        await conn.execute("UPDATE ingest_sources SET rate_per_minute = 1000000")
        pool = await create_pool(url, settings, min_size=1, max_size=2)
        await create_user(pool, "bench-sup", PASSWORD, ["supervisor"])
        await pool.close()

        n_copy = args.copy_records or args.records
        print(f"# machine: {os.cpu_count()} cores (shared), PostgreSQL embedded, batch {args.batch}")
        t = await bench_copy(conn, n_copy, args.batch)
        print(f"raw COPY (staged, {args.batch}/txn): {n_copy} records in {t:.1f} s = {n_copy / t:,.0f} records/s")
        copy_rate = n_copy / t
        t = await bench_copy_direct(conn, n_copy, args.batch)
        print(f"raw COPY (direct, {args.batch}/stmt): {n_copy} records in {t:.1f} s = {n_copy / t:,.0f} records/s")
        copy_rate = max(copy_rate, n_copy / t)
        await conn.execute("ALTER TABLE subcenter_calls DISABLE TRIGGER USER")
        t = await bench_copy_direct(conn, n_copy, args.batch)
        await conn.execute("ALTER TABLE subcenter_calls ENABLE TRIGGER USER")
        print(f"  (for reference: raw COPY direct with the change capture off: {n_copy / t:,.0f} records/s)")
        t = await bench_rowbyrow(conn, args.rowbyrow)
        print(f"row-by-row INSERT: {args.rowbyrow} records in {t:.1f} s = {args.rowbyrow / t:,.0f} records/s")
        await reset(conn)

        port = free_port()
        env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": str(tmp),
               "HOTLINE_SECRET_KEY": "bench-secret", "HOTLINE_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen([sys.executable, "-m", "hotline", "serve", "--no-agi", "--no-scheduler",
                                 "--no-workers", "--web-port", str(port)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(base + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            async with session.post(base + "/api/v1/auth/login",
                                    json={"username": "bench-sup", "password": PASSWORD}) as resp:
                assert resp.status == 200
                cookie = resp.cookies["hotline_session"].value

        t, lat, counts = await bench_api(base, key, args.records, args.batch, args.concurrency)
        rate = args.records / t
        print(f"HTTP API ({args.concurrency} in flight): {args.records} records in {t:.1f} s = {rate:,.0f} records/s; "
              f"batch latency p50 {pct(lat, 0.5) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms; {counts}")
        print(f"API / raw COPY = {rate / copy_rate:.0%}")
        stored = await conn.fetchval("SELECT count(*) FROM subcenter_calls")
        print(f"stored: {stored} records; change-log rows: {await conn.fetchval('SELECT count(*) FROM change_log')}")

        lag_sent, lag_answered = await bench_feed_lag(base, key, cookie, args.lag_batches, args.lag_batch,
                                                      args.lag_interval)
        print(f"feed lag ({args.lag_batches} batches of {args.lag_batch}, one every {args.lag_interval} s), "
              f"from POST sent: p50 {pct(lag_sent, 0.5) * 1000:.0f} ms, p99 {pct(lag_sent, 0.99) * 1000:.0f} ms; "
              f"from POST answered: p50 {pct(lag_answered, 0.5) * 1000:.0f} ms, "
              f"p99 {pct(lag_answered, 0.99) * 1000:.0f} ms")
        await conn.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        await embedded.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
