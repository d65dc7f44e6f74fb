"""Tickets/SLA/report benchmark (not a test): prints figures for docs/bench/tickets.md.

In a private embedded PostgreSQL (a temporary directory, removed afterwards):

1. ticket create + dispatch through the HTTP API (one POST /api/v1/tickets with an
   inline dispatch: validation, intake, lead leg, SLA clocks, history, event) at
   concurrency 50 against a server running in its own process: requests/s, p50/p99;
2. the SLA scan over 1,000,000 open tickets (each with a stopped sign clock and a
   running handle clock with four alert marks): a catch-up round after a one-hour
   outage, a steady-state round (one minute later), and an idle round;
3. the monthly supervisor report over those 1,000,000 tickets and 2,000,000 calls
   in the same month: call metrics (total, per line, per day, per agent) and ticket/
   SLA metrics (total, per line, per unit).

    .venv/bin/python bench/tickets_bench.py [--tickets 1000000] [--calls 2000000] [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hotline.auth import create_user  # noqa: E402
from hotline.calendar.core import SHANGHAI  # noqa: E402
from hotline.config import PROJECT_ROOT, load_settings  # noqa: E402
from hotline.db.embedded import EmbeddedPostgres  # noqa: E402
from hotline.db.migrations import migrate  # noqa: E402
from hotline.db.pool import connect, create_pool  # noqa: E402
from hotline.registry import load_registry, sync_registry  # noqa: E402
from hotline.reports.metrics import Period, call_metrics, ticket_metrics  # noqa: E402
from hotline.sla.scan import scan  # noqa: E402
from hotline.tickets.seed import seed_reference_data  # noqa: E402

PASSWORD = "bench-password-1"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settings_for(url: str, data_dir: str, port: int = 0):  # type: ignore[no-untyped-def]
    return load_settings(PROJECT_ROOT / "config" / "hotline.toml", env={
        "HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": data_dir, "HOTLINE_WEB_PORT": str(port),
        "HOTLINE_LOG_LEVEL": "WARNING"})


async def serve_only(url: str, port: int, data_dir: str) -> None:
    """The server process: the real app on a pool of 20 connections."""
    from aiohttp import web

    from hotline.db import Database
    from hotline.runtime import Runtime
    from hotline.web import create_app

    settings = settings_for(url, data_dir, port)
    registry = load_registry(PROJECT_ROOT / "config" / "hotlines.yaml")
    pool = await create_pool(url, settings, min_size=20, max_size=20)
    runtime = Runtime(settings, registry, Database(pool=pool, url=url))
    runner = web.AppRunner(create_app(settings, registry, runtime=runtime), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def http_bench(url: str, data_dir: str, requests: int, concurrency: int) -> None:
    port = 18000 + os.getpid() % 1000
    proc = subprocess.Popen([sys.executable, __file__, "--serve-only", url, "--port", str(port),
                             "--data-dir", data_dir], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.strip() == "ready", line
        conn = await connect(url)
        await create_user(conn, "bench-agent", PASSWORD, ["agent"])
        await conn.close()
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                         cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.post(f"{base}/api/v1/auth/login",
                                    json={"username": "bench-agent", "password": PASSWORD}) as r:
                csrf = (await r.json())["csrf_token"]
            headers = {"X-CSRF-Token": csrf}
            categories = ["0201", "0203", "0305", "0401", "0502", "0603", "1101", "9901"]
            latencies: list[float] = []
            errors = 0
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(requests):
                queue.put_nowait(i)

            async def worker() -> None:
                nonlocal errors
                while not queue.empty():
                    i = queue.get_nowait()
                    if i >= requests:  # warm-up
                        i = requests + queue.qsize()
                    body = {"hotline_number": "12345", "subject": f"基准测试工单{i}", "facts": "占道经营影响通行",
                            "location": "定海区解放路", "caller_name": "测试", "caller_number": f"138{i:08d}",
                            "category_code": categories[i % len(categories)], "kind": "complaint",
                            "dispatch": {}}
                    t0 = time.perf_counter()
                    async with session.post(f"{base}/api/v1/tickets", json=body, headers=headers) as r:
                        await r.read()
                        if r.status != 201:
                            errors += 1
                            if errors == 1:
                                print("first error:", r.status, (await r.text())[:300], flush=True)
                    latencies.append(time.perf_counter() - t0)

            # warm-up
            for _ in range(50):
                queue.put_nowait(requests)
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            latencies.clear()
            for i in range(requests):
                queue.put_nowait(i)
            cpu0 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - t0
            server_cpu = cpu_seconds(proc.pid) - cpu0
        print(f"[http] create+dispatch x{requests} at concurrency {concurrency}: {requests / elapsed:7.1f} req/s  "
              f"p50 {pct(latencies, 50) * 1000:6.1f} ms  p99 {pct(latencies, 99) * 1000:6.1f} ms  "
              f"max {max(latencies) * 1000:6.1f} ms  errors {errors}", flush=True)
        print(f"[http] server process CPU {server_cpu / requests * 1000:.2f} ms per request "
              f"(= {requests / server_cpu if server_cpu else 0:.0f} req/s per fully available core); "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


GENERATE_TICKETS = """
INSERT INTO tickets (hotline_number, channel, source, kind, category_code, urgency, subject, facts,
                     caller_number, state, lead_unit_code, created_at, updated_at, dispatched_at,
                     returned_count, extended_count, reopen_count, created_by)
SELECT ($2::text[])[1 + g % cardinality($2::text[])], 'phone', 'console',
       (ARRAY['enquiry','help','suggestion','complaint','report'])[1 + g % 5],
       ($3::text[])[1 + (g / 7) % cardinality($3::text[])],
       CASE WHEN g % 50 = 0 THEN 'urgent' ELSE 'normal' END,
       '基准工单' || g, '合成数据', '138' || lpad((g % 100000000)::text, 8, '0'),
       (ARRAY['dispatched','handling','handling','handling','extension_review','waiting_citizen','reply_review',
              'callback'])[1 + g % 8],
       ($4::text[])[1 + g % cardinality($4::text[])],
       $5::timestamptz + ((g::bigint * 7919) % 2419200) * interval '1 second',
       $5::timestamptz + ((g::bigint * 7919) % 2419200) * interval '1 second',
       $5::timestamptz + ((g::bigint * 7919) % 2419200) * interval '1 second',
       (g % 23 = 0)::int, (g % 17 = 0)::int, (g % 31 = 0)::int, $6
  FROM generate_series(1, $1) g
"""
# sign clocks are stopped; handle clocks run, with every level a scheduler running
# until $1 would have fired already marked as fired
GENERATE_CLOCKS = """
WITH t AS (SELECT id, hotline_number, lead_unit_code AS unit, created_at AS started FROM tickets)
INSERT INTO sla_clocks (ticket_id, stage, budget, natural_time, started_at, stopped_at, outcome, deadline,
                        levels, marks, fired, next_check_at, overdue, unit_code, hotline_number)
SELECT id, 'sign', interval '1 day', false, started, started + (id % 40) * interval '1 hour',
       CASE WHEN id % 40 < 24 THEN 'met' ELSE 'missed' END, started + interval '1 day',
       '{50,80,100,150}'::int[], ARRAY[started + interval '12 hours', started + interval '19.2 hours',
                                      started + interval '1 day', started + interval '1.5 days'],
       4, NULL::timestamptz, id % 40 >= 24, unit, hotline_number FROM t
UNION ALL
SELECT id, 'handle', b, false, started, NULL::timestamptz, NULL::text, m[3], '{50,80,100,150}'::int[], m, f,
       m[f + 1], f >= 3, unit, hotline_number
  FROM t, LATERAL (SELECT (5 + id % 20) * interval '1 day' AS b) x,
       LATERAL (SELECT ARRAY[started + b * 0.5, started + b * 0.8, started + b, started + b * 1.5] AS m) y,
       LATERAL (SELECT (m[1] <= $1)::int + (m[2] <= $1)::int + (m[3] <= $1)::int + (m[4] <= $1)::int AS f) z
"""
GENERATE_CALLS = """
INSERT INTO calls (call_uid, source, hotline_number, caller_number, state, started_at, queued_at, answered_at,
                   ended_at, wait_seconds, talk_seconds, acw_seconds, agent_id)
SELECT 'bench-' || g, 'cdr', ($2::text[])[1 + g % cardinality($2::text[])], '139' || lpad((g % 1000000)::text, 8, '0'),
       CASE WHEN g % 10 < 8 THEN 'completed' WHEN g % 10 = 8 THEN 'abandoned' ELSE 'failed' END,
       s, CASE WHEN g % 10 <> 9 THEN s END,
       CASE WHEN g % 10 < 8 THEN s + w * interval '1 second' END,
       s + (w + 180) * interval '1 second', w, CASE WHEN g % 10 < 8 THEN 30 + g % 600 END,
       CASE WHEN g % 10 < 8 THEN g % 90 END, CASE WHEN g % 10 < 8 THEN ($4::bigint[])[1 + g % cardinality($4::bigint[])] END
  FROM generate_series(1, $1) g,
       LATERAL (SELECT $3::timestamptz + ((g::bigint * 7919) % 2419200) * interval '1 second' AS s,
                       ((g * 31) % 4000) / 100.0 AS w) x
"""


async def data_bench(url: str, tickets: int, calls: int) -> None:
    conn = await connect(url)
    try:
        month = datetime(2026, 11, 1, tzinfo=SHANGHAI)
        lines = [r["number"] for r in await conn.fetch("SELECT number FROM hotlines ORDER BY number")]
        cats = [r["code"] for r in await conn.fetch("SELECT code FROM ticket_categories WHERE parent_code IS NOT NULL")]
        units = [r["code"] for r in await conn.fetch("SELECT code FROM units ORDER BY code")]
        agents = []
        for i in range(100):
            agents.append(await conn.fetchval(
                "INSERT INTO users (username, display_name, password_hash, roles) VALUES ($1, $1, 'x', '{agent}') "
                "RETURNING id", f"bench-a{i:03d}"))
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        # a bulk load: secondary indexes are dropped first and rebuilt afterwards
        indexes = await conn.fetch(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
                WHERE i.tablename IN ('tickets', 'sla_clocks', 'calls') AND i.schemaname = 'public'
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexname::regclass)""")
        for ix in indexes:
            await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
        t0 = time.perf_counter()
        await conn.execute(GENERATE_TICKETS, tickets, lines, cats, units, month, agents[0])
        print(f"[data] tickets {time.perf_counter() - t0:5.1f} s", flush=True)
        await conn.execute(GENERATE_CLOCKS, datetime(2026, 11, 29, tzinfo=SHANGHAI))
        print(f"[data] clocks {time.perf_counter() - t0:5.1f} s", flush=True)
        await conn.execute(GENERATE_CALLS, calls, lines, month, agents)
        print(f"[data] calls {time.perf_counter() - t0:5.1f} s", flush=True)
        for ix in indexes:
            await conn.execute(ix["indexdef"])
        print(f"[data] {len(indexes)} indexes rebuilt {time.perf_counter() - t0:5.1f} s", flush=True)
        await conn.execute("VACUUM ANALYZE tickets")
        await conn.execute("VACUUM ANALYZE sla_clocks")
        await conn.execute("VACUUM ANALYZE calls")
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM tickets WHERE state NOT IN ('closed','merged')) AS open_tickets, "
            "(SELECT count(*) FROM sla_clocks) AS clocks, "
            "(SELECT count(*) FROM sla_clocks WHERE next_check_at IS NOT NULL) AS armed, "
            "(SELECT count(*) FROM calls) AS calls")
        print(f"[data] generated in {time.perf_counter() - t0:5.1f} s: {dict(counts)}", flush=True)
    finally:
        await conn.close()

    settings = settings_for(url, tempfile.gettempdir())
    pool = await create_pool(url, settings, min_size=2, max_size=4)
    try:
        settled = datetime(2026, 11, 29, tzinfo=SHANGHAI)
        for label, at in [("catch-up after 1 h outage", settled.replace(hour=1)),
                          ("steady state, next minute", settled.replace(hour=1, minute=1)),
                          ("idle (nothing due)", settled.replace(hour=1, minute=1))]:
            t0 = time.perf_counter()
            result = await scan(pool, now=at)
            took = time.perf_counter() - t0
            print(f"[sla scan] {label:<28} {took * 1000:8.1f} ms  rows touched {result.due:6d}  "
                  f"alerts {result.alerts:6d} {result.by_kind}", flush=True)
        period = Period(datetime(2026, 11, 1, tzinfo=SHANGHAI), datetime(2026, 12, 1, tzinfo=SHANGHAI))
        total = 0.0
        for kind, fn, groups in [("calls", call_metrics, ("total", "line", "day", "agent")),
                                 ("tickets", ticket_metrics, ("total", "line", "unit"))]:
            for group in groups:
                t0 = time.perf_counter()
                rows = await fn(pool, period, group)
                took = time.perf_counter() - t0
                total += took if group == "total" or kind == "tickets" and group == "line" else 0
                print(f"[report] {kind:<7} per {group:<5} {took:6.2f} s  ({len(rows)} rows)", flush=True)
        t0 = time.perf_counter()
        await asyncio.gather(call_metrics(pool, period, "line"), ticket_metrics(pool, period, "line"))
        print(f"[report] monthly supervisor report (calls + tickets per line, in parallel): "
              f"{time.perf_counter() - t0:5.2f} s", flush=True)
    finally:
        await pool.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=2_000_000)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--serve-only", metavar="URL")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--data-dir", default="")
    args = ap.parse_args()
    if args.serve_only:
        await serve_only(args.serve_only, args.port, args.data_dir)
        return
    tmp = Path(tempfile.mkdtemp(prefix="tickets-bench-"))
    pg = EmbeddedPostgres(tmp)
    await pg.start()
    try:
        print(f"machine: {os.cpu_count()} CPU(s), shared with other engineers' work; PostgreSQL embedded (pgserver)")
        url = await pg.ensure_database("bench")
        conn = await connect(url)
        try:
            await migrate(conn, PROJECT_ROOT / "migrations")
            await sync_registry(conn, load_registry(PROJECT_ROOT / "config" / "hotlines.yaml"))
            await seed_reference_data(conn)
        finally:
            await conn.close()
        if not args.skip_http:
            await http_bench(url, str(tmp / "var"), args.requests, args.concurrency)
        await data_bench(url, args.tickets, args.calls)
    finally:
        await pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
