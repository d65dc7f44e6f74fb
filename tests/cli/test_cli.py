"""The ``hotline`` command, run as a real process against the test database."""

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from support import three_mistakes

from hotline.config import PROJECT_ROOT


def _environ(db_url: str, tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    environ.update(HOTLINE_DATABASE_URL=db_url, HOTLINE_DATA_DIR=str(tmp_path / "var"), **env)
    return environ


def run_cli(*args: str, db_url: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """For plain tests; async tests use :func:`arun_cli` (the event loop keeps running)."""
    return subprocess.run(
        [sys.executable, "-m", "hotline", *args], cwd=PROJECT_ROOT, env=_environ(db_url, tmp_path, env),
        capture_output=True, text=True, timeout=120,
    )


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def arun_cli(*args: str, db_url: str, tmp_path: Path, **env: str) -> Ran:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline", *args, cwd=PROJECT_ROOT, env=_environ(db_url, tmp_path, env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


def test_help_everywhere(db_url: str, tmp_path: Path) -> None:
    for args in (["--help"], ["serve", "--help"], ["migrate", "--help"], ["hotlines", "--help"],
                 ["hotlines", "check", "--help"], ["users", "create", "--help"]):
        result = run_cli(*args, db_url=db_url, tmp_path=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
        assert "usage: hotline" in result.stdout


def test_check_good_registry(db_url: str, tmp_path: Path) -> None:
    result = run_cli("hotlines", "check", db_url=db_url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "33 numbers: 13 merged, 14 dual, 5 subcenter, 1 platform" in result.stdout


async def test_bad_registry_check_and_serve_refuse_and_database_is_unchanged(
    db_url: str, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    bad = tmp_path / "hotlines.yaml"
    bad.write_text(three_mistakes(), encoding="utf-8")
    before = await pool.fetch("SELECT * FROM hotlines ORDER BY number")

    check = await arun_cli("hotlines", "--file", str(bad), "check", db_url=db_url, tmp_path=tmp_path)
    assert check.returncode != 0
    for fragment in ("mergd", "duplicate number 12349", "lines[29] (12366): dial_target"):
        assert fragment in check.stderr, check.stderr

    serve = await arun_cli("serve", "--migrate", db_url=db_url, tmp_path=tmp_path, HOTLINE_REGISTRY=str(bad),
                    HOTLINE_WEB_PORT="0", HOTLINE_AGI_PORT="0")
    assert serve.returncode != 0
    assert "mergd" in serve.stderr and "duplicate number 12349" in serve.stderr

    sync = await arun_cli("hotlines", "--file", str(bad), "sync", db_url=db_url, tmp_path=tmp_path)
    assert sync.returncode != 0
    assert await pool.fetch("SELECT * FROM hotlines ORDER BY number") == before


async def test_migrate_twice_and_edited_migration_refused(
    cluster, db_url: str, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    # a brand-new empty database: first run applies everything, second is a no-op
    empty = "cli_" + os.urandom(4).hex()
    await cluster.execute(f'CREATE DATABASE "{empty}"')
    try:
        url = cluster.url(empty)
        first = await arun_cli("migrate", db_url=url, tmp_path=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "applied 0001_registry.sql" in first.stdout
        second = await arun_cli("migrate", db_url=url, tmp_path=tmp_path)
        assert second.returncode == 0 and second.stdout.strip() == "database is up to date"

        edited_dir = tmp_path / "migrations"
        edited_dir.mkdir()
        for src in (PROJECT_ROOT / "migrations").glob("*.sql"):
            (edited_dir / src.name).write_bytes(src.read_bytes())
        (edited_dir / "0002_auth.sql").write_text("-- someone edited this\n" + (edited_dir / "0002_auth.sql").read_text())
        config = tmp_path / "hotline.toml"
        config.write_text(f'migrations_dir = "{edited_dir}"\n')
        third = await arun_cli("--config", str(config), "migrate", db_url=url, tmp_path=tmp_path)
        assert third.returncode != 0
        assert "0002_auth.sql" in third.stderr
    finally:
        await cluster.execute(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')


async def test_sync_and_list(db_url: str, tmp_path: Path, pool: asyncpg.Pool) -> None:
    await pool.execute("UPDATE hotlines SET name = 'old name' WHERE number = '12333'")
    result = await arun_cli("hotlines", "sync", db_url=db_url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 updated" in result.stdout
    assert await pool.fetchval("SELECT name FROM hotlines WHERE number = '12333'") == "人力资源和社会保障服务热线"
    listing = await arun_cli("hotlines", "list", db_url=db_url, tmp_path=tmp_path)
    assert "33 line(s)" in listing.stdout and "PJSIP/12366@subcenter-tax" in listing.stdout


async def test_users_create_first_admin(db_url: str, tmp_path: Path, pool: asyncpg.Pool) -> None:
    result = await arun_cli("users", "create", "chief", "--role", "admin", "--name", "系统管理员",
                     db_url=db_url, tmp_path=tmp_path, HOTLINE_NEW_PASSWORD="a-long-admin-password")
    assert result.returncode == 0, result.stderr
    row = await pool.fetchrow("SELECT roles, password_hash FROM users WHERE username = 'chief'")
    assert row["roles"] == ["admin"] and row["password_hash"].startswith("$argon2")
