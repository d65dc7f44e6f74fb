"""``hotline seats phone|list``: give agents and expert seats their phone and skills."""

from __future__ import annotations

import argparse

from hotline.calls.members import SeatFacts, seat_queues
from hotline.calls.settings import CallSettings
from hotline.console import seats
from hotline.db import open_database
from hotline.registry import load_registry
from hotline.telephony.pbx import AmiSeatPbx, ami_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("seats", help="seat phones and skills",
                       description="Give agents and expert seats their phone (Asterisk interface) and skills.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ph = actions.add_parser("phone", help="set a seat's phone and skills (audited; Asterisk follows when "
                            "[calls] ami_host is set)")
    ph.add_argument("username")
    ph.add_argument("--interface", required=True,
                    help="Asterisk dial string TECH/resource, e.g. PJSIP/8001 (\"\" takes the phone away)")
    ph.add_argument("--skills", default="", help="comma-separated skills of registry lines, e.g. hrss,tax")
    ph.set_defaults(func=phone)
    actions.add_parser("list", help="list seats with phone, skills, state and queues").set_defaults(func=list_)


async def phone(args: argparse.Namespace) -> int:
    registry = load_registry(args.settings.registry_path)
    ami = ami_config(CallSettings.from_settings(args.settings))
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        user_id = await seats.user_id_by_name(db.pool, args.username)
        change = await seats.set_phone(
            db.pool, registry, user_id, interface=args.interface or None,
            skills=[s for s in args.skills.split(",") if s.strip()], by_name="cli",
            pbx=None if ami is None else AmiSeatPbx(ami, registry))
    finally:
        await db.close()
    print(f"{args.username}: phone {change.interface or '—'}, skills {','.join(change.skills) or '—'}"
          + ("" if change.pbx_updated is not False else f"  ({change.note})"))
    return 0


async def list_(args: argparse.Namespace) -> int:
    registry = load_registry(args.settings.registry_path)
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        rows = await seats.list_phones(db.pool)
    finally:
        await db.close()
    for r in rows:
        facts = SeatFacts(r["user_id"], r["username"], r["display_name"], frozenset(r["roles"]),
                          r["hotline_number"], r["state"], r["reason"], r["interface"], tuple(r["skills"]))
        queues = ",".join(seat_queues(facts, registry)) if r["interface"] else ""
        print(f"{r['username']:<20} {r['interface'] or '—':<24} {r['state']:<10} "
              f"{','.join(r['skills']) or '—':<24} {queues}" + ("" if r["active"] else "  [inactive]"))
    return 0
