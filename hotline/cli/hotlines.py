"""``hotline hotlines check|sync|list``: the registry file and its copy in the database."""

from __future__ import annotations

import argparse
import sys

from hotline.db import open_database
from hotline.registry import RegistryInvalid, list_hotlines, load_registry, sync_registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hotlines", help="check, sync or list the hotline registry",
                       description="Work with config/hotlines.yaml (or $HOTLINE_REGISTRY).")
    p.add_argument("--file", help="registry file (default: the configured one)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("check", help="validate the file and print every problem").set_defaults(func=check)
    actions.add_parser("sync", help="load a valid file into the database in one transaction").set_defaults(func=sync)
    ls = actions.add_parser("list", help="list the lines in the database")
    ls.add_argument("--all", action="store_true", help="include deactivated lines")
    ls.set_defaults(func=list_)


def _path(args: argparse.Namespace) -> str:
    return args.file or str(args.settings.registry_path)


def check(args: argparse.Namespace) -> int:
    try:
        registry = load_registry(_path(args))
    except RegistryInvalid as exc:
        print(exc.message, file=sys.stderr)
        return 1
    counts = registry.counts()
    unconfirmed = sum(1 for line in registry if not line.mode_confirmed)
    print(f"{_path(args)}: OK, {len(registry)} numbers: "
          + ", ".join(f"{counts[m]} {m}" for m in ("merged", "dual", "subcenter", "platform"))
          + f" ({unconfirmed} with a sample mode still to confirm)")
    return 0


async def sync(args: argparse.Namespace) -> int:
    registry = load_registry(_path(args))  # refuses before the database is touched
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        async with db.pool.acquire() as conn:
            result = await sync_registry(conn, registry)
    finally:
        await db.close()
    print(f"registry synced: {result.summary()}")
    if result.deactivated:
        print(f"deactivated (kept for history): {', '.join(result.deactivated)}")
    return 0


async def list_(args: argparse.Namespace) -> int:
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        rows = await list_hotlines(db.pool, include_inactive=args.all)
    finally:
        await db.close()
    for r in rows:
        state = "" if r["active"] else "  [inactive]"
        extra = r["dial_target"] or r["expert_pool"] or ""
        print(f"{r['number']:>6}  {r['mode']:<9}  {r['name']}  ({r['department']})  {extra}{state}")
    print(f"{len(rows)} line(s)")
    return 0
