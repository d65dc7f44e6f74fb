"""``hotline sla scan|recompute``: run the SLA scan once, or recompute running deadlines."""

from __future__ import annotations

import argparse
import json

from hotline.calendar.store import load_calendar
from hotline.config import ConfigFiles
from hotline.db import open_database
from hotline.sla.clocks import recompute_all
from hotline.sla.config import sla_config
from hotline.sla.scan import scan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sla", help="SLA deadlines: scan once or recompute",
                       description="SLA: fire due warnings/overdue/escalations once, or recompute deadlines.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("scan", help="fire every alert level that is due now (idempotent)").set_defaults(func=scan_)
    actions.add_parser("recompute", help="recompute running deadlines from policy + calendar + history"
                       ).set_defaults(func=recompute_)


async def scan_(args: argparse.Namespace) -> int:
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        result = await scan(db.pool)
    finally:
        await db.close()
    print(json.dumps(result.to_json(), ensure_ascii=False))
    return 0


async def recompute_(args: argparse.Namespace) -> int:
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        async with db.pool.acquire() as conn:
            n = await recompute_all(conn, await load_calendar(conn, args.settings.tz),
                                    rules=sla_config(ConfigFiles(args.settings)))
    finally:
        await db.close()
    print(f"{n} running clock(s) recomputed")
    return 0
