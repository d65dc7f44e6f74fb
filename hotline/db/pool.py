"""The asyncpg pool, owned by whoever opens the :class:`Database` (the app's
lifecycle, a CLI command, a test). The same code path serves the embedded server
and an external one: only the URL differs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from hotline.config import Settings
from hotline.db.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Database:
    """An open pool plus, when we started one, the embedded server behind it."""

    pool: asyncpg.Pool
    url: str
    embedded: EmbeddedPostgres | None = None

    async def close(self) -> None:
        await self.pool.close()
        if self.embedded is not None:
            await self.embedded.stop()


@contextlib.asynccontextmanager
async def resolve_database_url(settings: Settings) -> AsyncIterator[str]:
    """Yield the URL to use: the configured one, or the embedded server's (started
    for the duration of the block)."""
    if settings.database.url:
        yield settings.database.url
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    await embedded.start()
    try:
        yield await embedded.ensure_database()
    finally:
        await embedded.stop()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON in and out as Python objects, everywhere.
    import json

    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def connect(url: str) -> asyncpg.Connection:
    """A single connection with the same codecs as the pool's (for scripts, tests)."""
    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    return conn


async def create_pool(url: str, settings: Settings, part: str = "", /, **overrides: object) -> asyncpg.Pool:
    """``part`` names the node part that uses the pool: its connections show as
    ``hotline/<part>`` in ``pg_stat_activity`` (who holds which connection, what it costs)."""
    options: dict[str, object] = {
        "min_size": settings.database.pool_min,
        "max_size": settings.database.pool_max,
        "command_timeout": settings.database.command_timeout,
        "init": _init_connection,
        "server_settings": {"application_name": f"hotline/{part}" if part else "hotline",
                            "timezone": settings.timezone},
    }
    options.update(overrides)
    pool = await asyncpg.create_pool(url, **options)
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without the reset query (``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL``): for work that changes no session state (no LISTEN, SET,
    session advisory locks or cursors; asyncpg still rolls back an open transaction
    first). Saves a round trip per release."""


async def create_work_pool(url: str, settings: Settings, *, part: str, min_size: int, max_size: int) -> asyncpg.Pool:
    """A pool of its own for a node part that must not wait behind web load and keeps no
    session state (the FastAGI flows, the AMI listener, the record followers)."""
    return await create_pool(url, settings, part, min_size=min_size, max_size=max_size, reset=_keep_session)


async def open_database(settings: Settings, **pool_options: object) -> Database:
    """Start the embedded server if needed and open a pool. Call ``close()``."""
    embedded = None
    url = settings.database.url
    if not url:
        embedded = EmbeddedPostgres(settings.data_dir)
        await embedded.start()
        url = await embedded.ensure_database()
    try:
        pool = await create_pool(url, settings, **pool_options)
    except BaseException:
        if embedded is not None:
            await embedded.stop()
        raise
    return Database(pool=pool, url=url, embedded=embedded)
