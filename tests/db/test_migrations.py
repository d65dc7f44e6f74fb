from pathlib import Path

import asyncpg
import pytest

from hotline.config import PROJECT_ROOT
from hotline.db.migrations import MigrationChanged, discover, migrate


async def test_migrate_is_idempotent(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await migrate(conn, PROJECT_ROOT / "migrations") == []
    versions = [r["version"] for r in await pool.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in discover(PROJECT_ROOT / "migrations")]


async def test_changed_applied_migration_is_refused_by_name(pool: asyncpg.Pool, tmp_path: Path) -> None:
    for src in (PROJECT_ROOT / "migrations").glob("*.sql"):
        (tmp_path / src.name).write_bytes(src.read_bytes())
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after it was applied\n")
    async with pool.acquire() as conn:
        with pytest.raises(MigrationChanged) as err:
            await migrate(conn, tmp_path)
    assert first.name in err.value.message


async def test_each_migration_is_its_own_transaction(pool: asyncpg.Pool, tmp_path: Path) -> None:
    for src in (PROJECT_ROOT / "migrations").glob("*.sql"):
        (tmp_path / src.name).write_bytes(src.read_bytes())
    (tmp_path / "9998_good.sql").write_text("CREATE TABLE good_one (id int);")
    (tmp_path / "9999_bad.sql").write_text("CREATE TABLE bad_one (id int); SELECT no_such_function();")
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn, tmp_path)
    assert await pool.fetchval("SELECT to_regclass('good_one') IS NOT NULL")
    assert await pool.fetchval("SELECT to_regclass('bad_one') IS NULL")
    assert await pool.fetchval("SELECT count(*) FROM schema_migrations WHERE version = '9999'") == 0
