"""``hotline ingest ...``: sub-centre sources and keys, sending signed batches, Asterisk
record import and following, the quarantine, quality reports and the upstream push."""
# One-shot commands read local files before any concurrency starts: blocking reads are fine here.
# ruff: noqa: ASYNC240

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hotline.config import read_secret
from hotline.db import Database, open_database
from hotline.errors import ValidationError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="data aggregation: sources, keys, Asterisk records, quarantine, quality, push",
                       description="Sub-centre ingest, Asterisk CDR/queue_log import, data-quality reports and "
                       "the upstream push. See docs/INGEST.md.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    a = actions.add_parser("add-source", help="register a sub-centre and generate its key",
                           description="Register a source and write its new key to "
                           "<data_dir>/ingest-keys/<code>.key (mode 0600). The key is printed once: hand it to "
                           "the sub-centre over a secure channel.")
    a.add_argument("code", help="source code, e.g. tax-sub (lower-case letters, digits, - and _)")
    a.add_argument("--name", required=True, help="display name, e.g. 纳税缴费服务分中心")
    a.add_argument("--line", action="append", default=[], help="a line the source may report on (repeatable; "
                   "none: any line)")
    a.add_argument("--rate", type=int, default=600, help="signed requests per minute (default 600)")
    a.set_defaults(func=add_source_cmd)

    r = actions.add_parser("rotate-key", help="give a source a new key (the old one still signs for [ingest] key_overlap_minutes)")
    r.add_argument("code")
    r.set_defaults(func=rotate_key_cmd)

    actions.add_parser("sources", help="list sources (never their keys)").set_defaults(func=sources_cmd)

    s = actions.add_parser("send", help="sign and send a JSON or CSV file as batches (a sub-centre's client)",
                           description="Read records from a .json file ({\"records\": [...]} or a list) or a .csv "
                           "file and POST them in signed batches. The key comes from --key-file or "
                           "$HOTLINE_INGEST_KEY.")
    s.add_argument("file")
    s.add_argument("--url", required=True, help="base URL of the 12345 backend, e.g. https://12345.example/")
    s.add_argument("--source", required=True)
    s.add_argument("--kind", choices=["calls", "tickets"], required=True)
    s.add_argument("--key-file", help="file holding the key (default: $HOTLINE_INGEST_KEY)")
    s.add_argument("--batch", type=int, default=1000, help="records per request (≤ 5000)")
    s.set_defaults(func=send_cmd)

    c = actions.add_parser("cdr", help="import Asterisk records once: Master.csv, queue_log or a cdr table",
                           description="Import once, idempotently (rows are keyed by content). For continuous "
                           "following use `hotline ingest follow` or [ingest] cdr_csv/queue_log in hotline.toml.")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", help="a Master.csv file")
    src.add_argument("--queue-log", help="a queue_log file")
    src.add_argument("--table", help="a cdr_pgsql table name (in --table-url, default: our database)")
    c.add_argument("--table-url", help="PostgreSQL URL of the database holding the cdr table")
    c.add_argument("--since", help="cdr table: only rows with calldate ≥ this (YYYY-MM-DD[ HH:MM])")
    c.add_argument("--timezone", help="time zone of Asterisk's timestamps (default: the node's)")
    c.set_defaults(func=cdr_cmd)

    f = actions.add_parser("follow", help="follow Master.csv and/or queue_log like tail -F until interrupted",
                           description="Resumes from the stored offset; handles rotation and truncation.")
    f.add_argument("--csv", help="Master.csv to follow")
    f.add_argument("--queue-log", help="queue_log to follow")
    f.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    f.add_argument("--timezone", help="time zone of Asterisk's timestamps (default: the node's)")
    f.set_defaults(func=follow_cmd)

    q = actions.add_parser("quarantine", help="list quarantined records, or re-process the open ones")
    q.add_argument("--source")
    q.add_argument("--kind", choices=["calls", "tickets"])
    q.add_argument("--reprocess", action="store_true", help="try every open record again (after a fix)")
    q.set_defaults(func=quarantine_cmd)

    qa = actions.add_parser("quality", help="generate and print the data-quality report of a day")
    qa.add_argument("--day", help="YYYY-MM-DD (default: yesterday)")
    qa.add_argument("--source", help="one source (default: all active)")
    qa.add_argument("--csv", action="store_true", help="CSV instead of JSON")
    qa.set_defaults(func=quality_cmd)

    pu = actions.add_parser("push", help="push pending changes upstream now and print the status")
    pu.set_defaults(func=push_cmd)

    actions.add_parser("attach-feed", help="(re)attach the change capture to calls, tickets and sub-centre tables"
                       ).set_defaults(func=attach_feed_cmd)


@contextlib.asynccontextmanager
async def _db(args: argparse.Namespace) -> AsyncIterator[Database]:
    db = await open_database(args.settings, min_size=1, max_size=4)
    try:
        yield db
    finally:
        await db.close()


async def add_source_cmd(args: argparse.Namespace) -> int:
    from hotline.ingest.keys import add_source, env_var, key_dir

    async with _db(args) as db:
        source, key = await add_source(db.pool, args.settings, args.code, args.name,
                                       hotline_numbers=args.line, rate_per_minute=args.rate)
    print(f"source {source.code} registered (lines: {', '.join(source.hotline_numbers) or 'any'}; "
          f"fingerprint {source.key_fingerprint})")
    print(f"key (shown once; give it to the sub-centre over a secure channel): {key}")
    print(f"stored on this node in {key_dir(args.settings) / (source.code + '.key')}; on other web nodes copy that "
          f"file or set {env_var(source.code)}")
    return 0


async def rotate_key_cmd(args: argparse.Namespace) -> int:
    from hotline.ingest.keys import env_var, rotate_key

    async with _db(args) as db:
        key = await rotate_key(db.pool, args.settings, args.code)
    print(f"new key for {args.code} (shown once): {key}")
    print(f"update the other web nodes ({env_var(args.code)} and {env_var(args.code)}_PREVIOUS, or both key "
          "files) and the sub-centre: the old key still signs for [ingest] key_overlap_minutes")
    return 0


async def sources_cmd(args: argparse.Namespace) -> int:
    from hotline.ingest.keys import list_sources, load_key

    async with _db(args) as db:
        for s in await list_sources(db.pool):
            here = "key present" if load_key(args.settings, s.code) else "NO KEY ON THIS NODE"
            print(f"{s.code:<16} {s.name}  lines={','.join(s.hotline_numbers) or 'any'}  "
                  f"rate={s.rate_per_minute}/min  {'active' if s.active else 'inactive'}  {here}")
    return 0


def _read_records(path: Path) -> tuple[list, str]:
    if path.suffix.lower() == ".csv":
        return path.read_text(encoding="utf-8-sig").splitlines(keepends=True), "csv"
    data = json.loads(path.read_text(encoding="utf-8"))
    return (data["records"] if isinstance(data, dict) else data), "json"


async def send_cmd(args: argparse.Namespace) -> int:
    import aiohttp

    from hotline.ingest.signing import sign_headers

    key = Path(args.key_file).read_text().strip() if args.key_file else (read_secret("HOTLINE_INGEST_KEY") or "")
    if not key:
        raise ValidationError("no key: use --key-file or set HOTLINE_INGEST_KEY", field="key")
    records, fmt = _read_records(Path(args.file))
    header = records[0] if fmt == "csv" else None
    rows = records[1:] if fmt == "csv" else records
    path = f"/api/v1/ingest/{args.kind}"
    totals = {"accepted": 0, "updated": 0, "duplicate": 0, "rejected": 0}
    async with aiohttp.ClientSession() as session:
        for start in range(0, len(rows), args.batch):
            chunk = rows[start:start + args.batch]
            if fmt == "csv":
                body, ctype = "".join([header, *chunk]).encode(), "text/csv"  # type: ignore[list-item]
            else:
                body, ctype = json.dumps({"records": chunk}, ensure_ascii=False).encode(), "application/json"
            headers = {**sign_headers(args.source, key, "POST", path, body), "Content-Type": ctype}
            async with session.post(args.url.rstrip("/") + path, data=body, headers=headers) as resp:
                answer = await resp.json()
                if resp.status != 200:
                    print(f"batch at record {start}: HTTP {resp.status}: {answer}", file=sys.stderr)
                    return 1
            for k, v in answer["counts"].items():
                totals[k] += v
            for r in answer["results"]:
                if r["status"] == "rejected":
                    print(f"record {start + r['index']} rejected: "
                          + "; ".join(x["message"] for x in r["reasons"]), file=sys.stderr)
    print(" ".join(f"{k}={v}" for k, v in totals.items()))
    return 0


def _tz(args: argparse.Namespace) -> ZoneInfo:
    from hotline.ingest.config import ingest_settings

    cfg = ingest_settings(args.settings)
    return ZoneInfo(args.timezone or cfg.cdr_timezone or args.settings.timezone)


async def cdr_cmd(args: argparse.Namespace) -> int:
    import asyncpg

    from hotline.ingest.cdr import import_cdr_table, import_lines
    from hotline.ingest.config import ingest_settings

    default_line = ingest_settings(args.settings).cdr_default_line
    tz = _tz(args)
    async with _db(args) as db:
        if args.table:
            since = datetime.fromisoformat(args.since) if args.since else None
            source = await asyncpg.connect(args.table_url or db.url)
            try:
                result = await import_cdr_table(source, db.pool, table=args.table, since=since, tz=tz,
                                                default_line=default_line)
            finally:
                await source.close()
        else:
            path = args.csv or args.queue_log
            kind = "cdr_csv" if args.csv else "queue_log"
            lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
            async with db.pool.acquire() as conn, conn.transaction():
                result = await import_lines(conn, kind, lines, origin=str(Path(path).resolve()), tz=tz,
                                            default_line=default_line)
    print(" ".join(f"{k}={v}" for k, v in result.to_json().items()))
    return 0


async def follow_cmd(args: argparse.Namespace) -> int:
    from hotline.ingest.follower import FileFollower

    if not (args.csv or args.queue_log):
        raise ValidationError("name --csv and/or --queue-log", field="csv")
    tz = _tz(args)
    async with _db(args) as db:
        followers = [FileFollower(db.pool, str(Path(p).resolve()), kind, tz)
                     for p, kind in ((args.csv, "cdr_csv"), (args.queue_log, "queue_log")) if p]
        print("following " + ", ".join(f.path for f in followers) + " (Ctrl-C to stop)", flush=True)
        try:
            while True:
                for follower in followers:
                    result = await follower.poll()
                    if result.imported or result.bad:
                        print(f"{follower.path}: " + " ".join(f"{k}={v}" for k, v in result.to_json().items()),
                              flush=True)
                await asyncio.sleep(args.interval)
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
        finally:
            for follower in followers:
                follower.close()
    return 0


async def quarantine_cmd(args: argparse.Namespace) -> int:
    from hotline.ingest.store import list_quarantine, reprocess_open

    async with _db(args) as db:
        if args.reprocess:
            result = await reprocess_open(db.pool, source=args.source, kind=args.kind)
            print(f"tried {result['tried']}: reprocessed {result['reprocessed']}, still open {result['still_open']}")
            return 0
        items = await list_quarantine(db.pool, source=args.source, kind=args.kind, status="open", limit=1000,
                                      before=None)
    for item in items:
        reasons = "; ".join(r["message"] for r in item["reasons"])
        print(f"#{item['id']} {item['source']}/{item['kind']} {item['source_id']} v{item['version']}: {reasons}")
    print(f"{len(items)} open record(s)")
    return 0


async def quality_cmd(args: argparse.Namespace) -> int:
    from hotline.quality.jobs import generate
    from hotline.quality.report import to_csv
    from hotline.registry import load_registry
    from hotline.runtime import Runtime

    day = date.fromisoformat(args.day) if args.day else datetime.now(args.settings.tz).date() - timedelta(days=1)
    async with _db(args) as db:
        runtime = Runtime(args.settings, load_registry(args.settings.registry_path), db)
        reports = await generate(runtime, day, [args.source] if args.source else None)
    if args.csv:
        sys.stdout.write(to_csv(reports))
    else:
        print(json.dumps(reports, ensure_ascii=False, indent=2, default=str))
    return 0


async def push_cmd(args: argparse.Namespace) -> int:
    from hotline.upstream.config import upstream_settings
    from hotline.upstream.worker import UpstreamWorker, status

    cfg = upstream_settings(args.settings)
    if not cfg.enabled:
        raise ValidationError("no [upstream] url configured", field="upstream.url")
    async with _db(args) as db:
        worker = UpstreamWorker(db.pool, cfg)
        try:
            outcomes = await worker.drain()
        finally:
            await worker.close()
        print(json.dumps({"rounds": outcomes[-20:], **(await status(db.pool, cfg))}, default=str, indent=2))
    return 0


async def attach_feed_cmd(args: argparse.Namespace) -> int:
    async with _db(args) as db:
        for table, entity in (("calls", "call"), ("tickets", "ticket"), ("subcenter_calls", "subcenter_call"),
                              ("subcenter_tickets", "subcenter_ticket")):
            ok = await db.pool.fetchval("SELECT feed_attach($1, $2)", table, entity)
            print(f"{table}: {'attached' if ok else 'not found (skipped)'}")
    return 0
