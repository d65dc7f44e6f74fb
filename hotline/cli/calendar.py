"""``hotline calendar``: load a year file, show a year, and do working-day arithmetic."""

from __future__ import annotations

import argparse
from datetime import date, datetime

from hotline.calendar.store import load_calendar, load_year_file, seed_year
from hotline.config import ConfigFiles
from hotline.db import open_database
from hotline.sla.clocks import recompute_all
from hotline.sla.config import sla_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calendar", help="the working-day calendar (holidays and 调休)",
                       description="Working days: public holidays and make-up working days (调休).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = actions.add_parser("load", help="load config/calendar/<year>.yaml into the database")
    load.add_argument("file", help="a year file, e.g. config/calendar/2027.yaml")
    load.add_argument("--replace", action="store_true", help="replace a year already loaded (API edits are lost)")
    load.set_defaults(func=load_)
    check = actions.add_parser("check", help="validate a year file without touching the database")
    check.add_argument("file")
    check.set_defaults(func=check_)
    show = actions.add_parser("show", help="list a year's holidays and make-up working days")
    show.add_argument("year", type=int, nargs="?", default=date.today().year)
    show.set_defaults(func=show_)
    add = actions.add_parser("add", help="START + N working days or hours (local time if no offset)")
    add.add_argument("start", help="ISO date-time, e.g. 2026-09-30T10:00")
    group = add.add_mutually_exclusive_group(required=True)
    group.add_argument("--days", type=float, help="working days")
    group.add_argument("--hours", type=float, help="working hours")
    add.set_defaults(func=add_)


def check_(args: argparse.Namespace) -> int:
    data = load_year_file(args.file)
    kinds = [k for _, k, _ in data["days"]]
    print(f"{args.file}: OK, {data['year']}: {kinds.count('holiday')} holiday(s), "
          f"{kinds.count('workday')} make-up working day(s)" + (" [PROVISIONAL]" if data["provisional"] else ""))
    return 0


async def load_(args: argparse.Namespace) -> int:
    data = load_year_file(args.file)
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        async with db.pool.acquire() as conn:
            written = await seed_year(conn, data, replace=args.replace)
            recomputed = (await recompute_all(conn, await load_calendar(conn, args.settings.tz),
                                              rules=sla_config(ConfigFiles(args.settings))) if written else 0)
    finally:
        await db.close()
    if not written:
        print(f"{data['year']} is loaded already; use --replace to overwrite it")
        return 1
    print(f"{data['year']}: {written} day(s) loaded; {recomputed} running SLA clock(s) recomputed")
    return 0


async def show_(args: argparse.Namespace) -> int:
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        meta = await db.pool.fetchrow("SELECT source, provisional FROM calendar_years WHERE year = $1", args.year)
        rows = await db.pool.fetch("SELECT day, kind, name FROM calendar_days WHERE day >= $1 AND day < $2 "
                                   "ORDER BY day", date(args.year, 1, 1), date(args.year + 1, 1, 1))
    finally:
        await db.close()
    if meta is None:
        print(f"{args.year} is not loaded")
        return 1
    print(f"{args.year}: {meta['source']}" + ("  [PROVISIONAL]" if meta["provisional"] else ""))
    for r in rows:
        label = "放假" if r["kind"] == "holiday" else "调休上班"
        print(f"  {r['day']} {r['day']:%a}  {label}  {r['name']}")
    return 0


async def add_(args: argparse.Namespace) -> int:
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        cal = await load_calendar(db.pool, args.settings.tz)
    finally:
        await db.close()
    start = datetime.fromisoformat(args.start)
    start = start if start.tzinfo else start.replace(tzinfo=cal.tz)
    end = cal.add_working_days(start, args.days) if args.days is not None else cal.add_working_hours(start, args.hours)
    print(end.astimezone(cal.tz).isoformat())
    return 0
