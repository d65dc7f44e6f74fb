"""``hotline tickets seed``: load reference data (categories, dispatch catalogue,
calendar years, SLA policies) from config/ — only what is missing."""

from __future__ import annotations

import argparse
import json

from hotline.config import ConfigFiles
from hotline.db import open_database
from hotline.tickets.seed import seed_reference_data


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tickets", help="tickets reference data",
                       description="Tickets: seed the category code table, the dispatch catalogue, the "
                                   "calendar and the SLA policies from config/ (missing rows only).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("seed", help="insert missing categories, catalogue entries, calendar years, SLA policies"
                       ).set_defaults(func=seed)


async def seed(args: argparse.Namespace) -> int:
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        async with db.pool.acquire() as conn:
            result = await seed_reference_data(conn, ConfigFiles(args.settings))
    finally:
        await db.close()
    print(json.dumps(result, ensure_ascii=False, default=str))
    return 0
