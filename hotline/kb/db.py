"""Database helpers shared by the knowledge-base modules: the connection type, one
transaction helper and the reference data articles are checked against."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeAlias

import asyncpg

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection


@contextlib.asynccontextmanager
async def transaction(db: Db) -> AsyncIterator[asyncpg.Connection]:
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

