"""The one transaction helper.

``transaction(db)`` gives a connection inside a transaction: with a pool, a connection
is acquired and a transaction opened; with a connection outside a transaction, one is
opened; with a connection already in a transaction, that transaction is joined (no
savepoint: a refusal raised inside aborts the caller's whole unit of work, as it
should, and an audit row or event written inside commits or rolls back with it)."""

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
    elif db.is_in_transaction():
        yield db
    else:
        async with db.transaction():
            yield db
