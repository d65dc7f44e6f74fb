"""Schema migrations: ``migrations/NNNN_name.sql`` applied in order, each in its own
transaction, recorded with a SHA-256 checksum in ``schema_migrations``.

An applied file that has changed since is refused by name: history is not
rewritten in place, a new migration is written instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from hotline.db.locks import LockKey
from hotline.errors import ConfigError, HotlineError

log = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# One constant for every process: concurrent `migrate` runs queue up, not collide.
_MIGRATION_LOCK = LockKey.MIGRATIONS


class MigrationChanged(HotlineError):
    code = "migration_changed"
    status = 500


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    path: Path
    sql: str
    checksum: str

    @property
    def filename(self) -> str:
        return self.path.name


def discover(directory: Path) -> list[Migration]:
    found: list[Migration] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise ConfigError(
                f"{path.name}: migration files are named NNNN_name.sql", field="migrations"
            )
        version, name = match.groups()
        if version in seen:
            raise ConfigError(
                f"{path.name} and {seen[version].name} share version {version}",
                field="migrations",
            )
        seen[version] = path
        data = path.read_bytes()
        found.append(
            Migration(version, name, path, data.decode("utf-8"), hashlib.sha256(data).hexdigest())
        )
    return found


async def applied(conn: asyncpg.Connection) -> dict[str, tuple[str, str]]:
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
    return {r["version"]: (r["name"], r["checksum"]) for r in rows}


async def migrate(conn: asyncpg.Connection, directory: Path) -> list[Migration]:
    """Apply pending migrations; return the ones applied (empty when up to date)."""
    migrations = discover(directory)
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version    text PRIMARY KEY,
               name       text NOT NULL,
               checksum   text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    await conn.execute("SELECT pg_advisory_lock($1)", int(_MIGRATION_LOCK))
    try:
        done = await applied(conn)
        changed = [
            m.filename for m in migrations if m.version in done and done[m.version][1] != m.checksum
        ]
        if changed:
            raise MigrationChanged(
                "applied migration changed on disk: " + ", ".join(changed)
                + " (write a new migration instead of editing an applied one)",
                field="migrations",
                files=changed,
            )
        on_disk = {m.version for m in migrations}
        for version, (name, _) in sorted(done.items()):
            if version not in on_disk:
                log.warning("migration %s_%s is applied but missing on disk", version, name)
        pending = [m for m in migrations if m.version not in done]
        for m in pending:
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("applied migration %s", m.filename)
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", int(_MIGRATION_LOCK))
