"""Test fixtures: a real PostgreSQL (embedded by default, or
``HOTLINE_TEST_DATABASE_URL``), one migrated template database per test session,
and a fresh database cloned from it for every test, so tests are isolated and can
run in any order."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import leftovers
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import (
    TEST_PASSWORD,  # noqa: E402  (re-exported for older imports)
    web_server,
)

from hotline.agi.live_transfer import ami_mover
from hotline.auth import create_user
from hotline.config import PROJECT_ROOT, Settings, load_settings
from hotline.db import Database
from hotline.db.embedded import EmbeddedPostgres
from hotline.db.migrations import migrate
from hotline.db.pool import connect, create_pool
from hotline.registry import Registry, load_registry, sync_registry
from hotline.runtime import Runtime

_SESSION_MARKER = pytest.StashKey[str]()

#: fixtures shared by the test folders of several packages (tickets, sla, reports,
#: numbering, assessment, notify; ingest, quality)
pytest_plugins = ["fixtures_tickets", "fixtures_ingest"]


def pytest_configure(config: pytest.Config) -> None:
    # every process this session starts carries the marker (see tests/leftovers.py)
    config.stash[_SESSION_MARKER] = leftovers.mark_session()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """``make test`` leaves no process behind: fail the run naming any that this session
    started and that still runs (PostgreSQL, Asterisk, Chromium, ``hotline serve`` ...)."""
    marker = session.config.stash.get(_SESSION_MARKER, None)
    if marker is None:
        return
    if hasattr(session.config, "workerinput"):
        # a pytest-xdist worker: the workers share the controller's marker, so one would
        # count another's Asterisk or PostgreSQL still at work; the controller checks
        # once every worker has finished
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    temp = factory.getbasetemp() if factory is not None and factory._basetemp is not None else None
    found = leftovers.wait_for_none(marker, temp)
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["processes started by this test session are still running:", *(f"  {p}" for p in found)]
    if reporter is not None:
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _with_database(url: str, name: str) -> str:
    """Replace the database name in a PostgreSQL URL (keeps host/socket query)."""
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}{sep}{query}"


class Cluster:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.template = f"hotline_tpl_{os.getpid()}"

    def url(self, name: str) -> str:
        return _with_database(self.admin_url, name)

    async def execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry(PROJECT_ROOT / "config" / "hotlines.yaml")


@pytest.fixture(scope="session")
async def cluster(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> AsyncIterator[Cluster]:
    external = os.environ.get("HOTLINE_TEST_DATABASE_URL")
    embedded = None
    if external:
        admin_url = external
    else:
        embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pgdata"))
        await embedded.start()
        admin_url = embedded.uri("postgres")
    c = Cluster(admin_url)
    await c.execute(f'DROP DATABASE IF EXISTS "{c.template}"')
    await c.execute(f"CREATE DATABASE \"{c.template}\" ENCODING 'UTF8' TEMPLATE template0")
    conn = await connect(c.url(c.template))
    try:
        await migrate(conn, PROJECT_ROOT / "migrations")
        await sync_registry(conn, registry)
    finally:
        await conn.close()
    try:
        yield c
    finally:
        await c.execute(f'DROP DATABASE IF EXISTS "{c.template}" WITH (FORCE)')
        if embedded is not None:
            await embedded.stop()


@pytest.fixture
async def db_url(cluster: Cluster) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    await cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE "{cluster.template}"')
    try:
        yield cluster.url(name)
    finally:
        await cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        PROJECT_ROOT / "config" / "hotline.toml",
        env={
            "HOTLINE_DATABASE_URL": db_url,
            "HOTLINE_DATA_DIR": str(tmp_path / "var"),
            "HOTLINE_WEB_PORT": "0",
            "HOTLINE_AGI_PORT": "0",
        },
    )


@pytest.fixture
async def runtime(settings: Settings, registry: Registry, db_url: str) -> AsyncIterator[Runtime]:
    pool = await create_pool(db_url, settings, min_size=1, max_size=10)
    rt = Runtime(settings, registry, Database(pool=pool, url=db_url), channel_mover=ami_mover)
    try:
        yield rt
    finally:
        await rt.close()
        await pool.close()


@pytest.fixture
async def pool(runtime: Runtime) -> asyncpg.Pool:
    return runtime.pool


@pytest.fixture
async def server(runtime: Runtime) -> AsyncIterator[TestServer]:
    async with web_server(runtime) as srv:
        yield srv


@pytest.fixture
async def client(server: TestServer) -> AsyncIterator[TestClient]:
    c = TestClient(server)
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


class Api:
    """A signed-in HTTP client over a real socket: adds the CSRF header for writes."""

    def __init__(self, client: TestClient, user: Any, csrf: str) -> None:
        self.client, self.user, self.csrf = client, user, csrf

    def _headers(self, kw: dict[str, Any]) -> dict[str, Any]:
        headers = dict(kw.pop("headers", {}) or {})
        headers.setdefault("X-CSRF-Token", self.csrf)
        return headers

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        return await self.client.request(method, path, headers=self._headers(kw), **kw)

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.client.get(path, **kw)

    async def post(self, path: str, **kw: Any) -> Any:
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> Any:
        return await self.request("PUT", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Any:
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Any:
        return await self.request("DELETE", path, **kw)


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def api_as(server: TestServer, pool: asyncpg.Pool) -> AsyncIterator[ApiFactory]:
    """``await api_as("agent")`` → a fresh user with those roles, signed in on its own client."""
    clients: list[TestClient] = []

    async def make(*roles: str, username: str | None = None, **user_kwargs: Any) -> Api:
        username = username or f"{'-'.join(roles) or 'user'}-{uuid.uuid4().hex[:6]}"
        user = await create_user(pool, username, TEST_PASSWORD, roles or ("agent",), **user_kwargs)
        c = TestClient(server)
        await c.start_server()
        clients.append(c)
        resp = await c.post("/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD})
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        return Api(c, user, body["csrf_token"])

    try:
        yield make
    finally:
        for c in clients:
            await c.close()


@pytest.fixture(scope="session")
def asterisk_install() -> Any:
    """The real Asterisk the telephony tests run (hotline.telephony.sandbox.find_asterisk);
    under CI=true a missing one fails the run instead of skipping."""
    from hotline.telephony.sandbox import AsteriskMissing, find_asterisk

    try:
        return find_asterisk()
    except AsteriskMissing as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs a real Asterisk: {exc}")
        pytest.skip(str(exc))


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Tests that start a real Asterisk (through ``asterisk_install``) are marked ``pbx``,
    so ``make test-fast`` (``-m "not browser and not pbx"``) can leave them out."""
    for item in items:
        if "asterisk_install" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.pbx)
