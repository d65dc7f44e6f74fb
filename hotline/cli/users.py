"""``hotline users create|list|passwd``: console accounts (the first admin comes from here)."""

from __future__ import annotations

import argparse
import getpass
import sys

from hotline.auth import ROLES, audit, create_user, list_users, update_user
from hotline.config import read_secret
from hotline.db import open_database, transaction
from hotline.errors import NotFound, ValidationError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="manage console users", description="Create and list console users.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser("create", help="create a user (prompts for the password, "
                           "or reads $HOTLINE_NEW_PASSWORD)")
    c.add_argument("username")
    c.add_argument("--role", action="append", required=True, choices=ROLES, dest="roles",
                   help="role (repeatable)")
    c.add_argument("--name", help="display name")
    c.add_argument("--unit", help="unit code (required for liaisons)")
    c.add_argument("--line", help="hotline number (expert seats: the line they serve)")
    c.set_defaults(func=create)
    actions.add_parser("list", help="list users").set_defaults(func=list_)
    pw = actions.add_parser("passwd", help="set a user's password (ends their sessions)")
    pw.add_argument("username")
    pw.set_defaults(func=passwd)


def _password() -> str:
    env = read_secret("HOTLINE_NEW_PASSWORD")
    if env:
        return env
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ValidationError("the two passwords differ", field="password")
    return first


async def create(args: argparse.Namespace) -> int:
    password = _password()
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        async with transaction(db.pool) as conn:  # the audit row commits with the change
            user = await create_user(conn, args.username, password, args.roles,
                                     display_name=args.name, unit_code=args.unit, hotline_number=args.line)
            await audit(conn, "user_created", username="cli", object_type="user", object_id=user.id,
                        detail={"roles": sorted(user.roles)})
    finally:
        await db.close()
    print(f"created user {user.username} (id {user.id}) with roles {', '.join(sorted(user.roles))}")
    return 0


async def list_(args: argparse.Namespace) -> int:
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        users = await list_users(db.pool)
    finally:
        await db.close()
    for u in users:
        print(f"{u.id:>5}  {u.username:<20} {','.join(sorted(u.roles)):<30} {u.unit_code or ''}"
              + ("" if u.active else "  [inactive]"))
    return 0


async def passwd(args: argparse.Namespace) -> int:
    password = _password()
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        user_id = await db.pool.fetchval("SELECT id FROM users WHERE username = $1", args.username)
        if user_id is None:
            raise NotFound(f"no user {args.username!r}", field="username")
        await update_user(db.pool, user_id, {"password": password})
    finally:
        await db.close()
    print(f"password changed for {args.username}; their sessions were ended", file=sys.stderr)
    return 0
