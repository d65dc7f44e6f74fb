"""``hotline migrate``: apply pending migrations (idempotent)."""

from __future__ import annotations

import argparse

from hotline.db import open_database
from hotline.db.migrations import migrate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="apply pending database migrations",
                       description="Apply migrations/NNNN_*.sql in order, each in its own transaction. "
                       "Refuses when an applied file has changed.")
    p.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    settings = args.settings
    db = await open_database(settings, min_size=1, max_size=2)
    try:
        async with db.pool.acquire() as conn:
            applied = await migrate(conn, settings.migrations_dir)
    finally:
        await db.close()
    if applied:
        for m in applied:
            print(f"applied {m.filename}")
    else:
        print("database is up to date")
    return 0
