"""A private PostgreSQL for one-command installs, run by the ``pgserver`` package.

With no database URL configured the backend starts PostgreSQL under
``data_dir/pg`` and stops it when the last user in any process lets go (pgserver
counts handles across processes, so ``hotline migrate`` and ``hotline serve`` can
share one server). A server left behind by a killed process is detected and
restarted by pgserver, so the next start needs no manual cleanup.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

DATABASE_NAME = "hotline"


class EmbeddedPostgres:
    """Handle on the embedded server; ``start`` and ``stop`` are idempotent."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pg"
        self._server: Any = None

    async def start(self) -> None:
        if self._server is not None:
            return
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            await asyncio.to_thread(_forget_dead_handles, self.pgdata)
            self._server = await asyncio.to_thread(
                pgserver.get_server, self.pgdata, cleanup_mode="stop"
            )
        log.info("embedded PostgreSQL running in %s", self.pgdata)

    def uri(self, database: str = DATABASE_NAME) -> str:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        return str(self._server.get_uri(database))

    async def ensure_database(self, name: str = DATABASE_NAME) -> str:
        """Create the application database inside the server if it is missing."""
        conn = await asyncpg.connect(self.uri("postgres"))
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                # identifiers cannot be parameters; the name is ours, quoted by the server
                ident = await conn.fetchval("SELECT quote_ident($1)", name)
                await conn.execute(f"CREATE DATABASE {ident} ENCODING 'UTF8' TEMPLATE template0")
        finally:
            await conn.close()
        return self.uri(name)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.cleanup)
            log.info("embedded PostgreSQL released (%s)", self.pgdata)


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when the last process using it lets go, counting them
    in ``.handle_pids.json``; a killed process never takes itself off that list, so the
    server would outlive every later run. Processes that no longer exist are dropped."""
    import json

    from pgserver.postgres_server import PostgresServer

    path = pgdata / ".handle_pids.json"
    with PostgresServer._lock:
        try:
            pids = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _exists(pid)]
        if alive != pids:
            log.info("embedded PostgreSQL: forgetting %d process(es) that were killed", len(pids) - len(alive))
            path.write_text(json.dumps(alive))


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
