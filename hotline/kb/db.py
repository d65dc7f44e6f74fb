"""Database helpers shared by the knowledge-base modules: the connection type, the
savepoint helper and the reference data articles are checked against."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeAlias

import asyncpg

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection


@contextlib.asynccontextmanager
async def savepoint(db: Db) -> AsyncIterator[asyncpg.Connection]:
    """A unit of work that can fail on its own: with a pool, a connection in a
    transaction of its own; with a connection, ``conn.transaction()``, i.e. a
    *savepoint* when the caller is in a transaction already (a refusal raised inside
    rolls back this part only, the caller's transaction goes on), a transaction when it
    is not. Unlike :func:`hotline.db.tx.transaction`, which joins the caller's."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db


async def units(db: Db) -> dict[str, str]:
    return {r["code"]: r["name"] for r in await db.fetch("SELECT code, name FROM units")}


async def hotline_numbers(db: Db) -> list[str]:
    return [r["number"] for r in await db.fetch("SELECT number FROM hotlines")]

