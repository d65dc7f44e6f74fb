"""Console fixtures: a headless Debian chromium driven by Playwright (async API in
the session loop), signed-in pages per role, a recorder that proves no request
leaves the backend, and helpers to place calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from hotline.auth import create_user
from hotline.config import PROJECT_ROOT
from hotline.events import publish

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = PROJECT_ROOT / "test-output" / "screenshots"
PASSWORD = "console-test-password"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test-deps` (installs Debian's chromium)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


class Pages:
    """Opens signed-in console pages and records every request's host."""

    def __init__(self, browser: Any, server: TestServer, pool: asyncpg.Pool) -> None:
        self.browser, self.server, self.pool = browser, server, pool
        self.base = str(server.make_url("/")).rstrip("/")
        self.backend = urlsplit(self.base).netloc
        self.hosts: list[str] = []
        self.paths: list[str] = []
        self.errors: list[str] = []
        self.contexts: list[Any] = []

    async def user(self, *roles: str, **kwargs: Any) -> Any:
        username = f"{roles[0]}-{uuid.uuid4().hex[:6]}"
        kwargs.setdefault("display_name", {"agent": "王晓燕", "expert": "李建国（人社专家）", "liaison": "陈联络员",
                                           "supervisor": "赵班长", "admin": "系统管理员", "dispatcher": "派单员"}
                          .get(roles[0], username))
        return await create_user(self.pool, username, PASSWORD, roles, **kwargs)

    async def new_page(self) -> Any:
        context = await self.browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai",
                                                 viewport={"width": 1400, "height": 1000})
        self.contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        def record(req: Any) -> None:
            url = urlsplit(req.url)
            self.hosts.append(url.netloc or req.url)
            self.paths.append(url.path)

        page.on("request", record)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        return page

    async def sign_in(self, user: Any, *, expect: str) -> Any:
        page = await self.new_page()
        await page.goto(f"{self.base}/console/login")
        await page.fill("#username", user.username)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"**/console/{expect}")
        await page.wait_for_selector("body[data-ready='1']")
        return page

    async def shot(self, page: Any, name: str) -> Path:
        """Save a full-page screenshot under test-output/screenshots/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    def foreign_hosts(self) -> list[str]:
        return sorted({h for h in self.hosts if h != self.backend and not h.startswith("data:")})

    async def close(self) -> None:
        for c in self.contexts:
            await c.close()


@pytest.fixture
async def pages(browser: Any, server: TestServer, pool: asyncpg.Pool) -> AsyncIterator[Pages]:
    p = Pages(browser, server, pool)
    try:
        yield p
    finally:
        await p.close()
    assert p.foreign_hosts() == [], f"requests left the backend: {p.foreign_hosts()}"
    assert p.errors == [], f"JavaScript errors: {p.errors}"


PlaceCall = Callable[..., Awaitable[int]]


@pytest.fixture
def place_call(pool: asyncpg.Pool) -> PlaceCall:
    """Insert a call and publish ``call.updated`` (and ``call.offered`` with ``agent_id``) as the call flow does."""

    async def place(hotline_number: str, caller: str, *, agent_id: int | None = None, state: str = "answered",
                    wait: float = 6.0) -> int:
        async with pool.acquire() as conn, conn.transaction():
            call_id = await conn.fetchval(
                """INSERT INTO calls (call_uid, hotline_number, caller_number, caller_kind, route, queue,
                                      state, started_at, queued_at, answered_at, wait_seconds, agent_id)
                   VALUES ($1, $2, $3, 'mobile', 'platform', 'hotline-12345', $4, now() - interval '10 s',
                           now() - interval '9 s',
                           CASE WHEN $4 = 'queued' THEN NULL ELSE now() END, $5, $6)
                   RETURNING id""",
                f"test-{uuid.uuid4().hex}", hotline_number, caller, state,
                None if state == "queued" else wait, agent_id,
            )
            await publish(conn, "call.updated", {"call_id": call_id, "state": state})
            if agent_id is not None:
                await publish(conn, "call.offered", {"call_id": call_id, "user_id": agent_id,
                                                     "hotline_number": hotline_number})
        return int(call_id)

    return place


@pytest.fixture
async def reference(pool: asyncpg.Pool) -> dict[str, Any]:
    """Ticket categories, dispatch catalogue, calendar and SLA policies from config/."""
    from hotline.tickets.seed import seed_reference_data

    async with pool.acquire() as conn:
        return await seed_reference_data(conn)


@pytest.fixture
async def knowledge(runtime: Any) -> AsyncIterator[Any]:
    """The 12333 seed articles, published and indexed."""
    from hotline.kb.engine import close_kb, get_kb
    from hotline.kb.importer import import_path

    report = await import_path(runtime.pool, PROJECT_ROOT / "knowledge_base" / "12333", partial=True)
    assert report.written
    engine = await get_kb(runtime)
    try:
        yield engine
    finally:
        await close_kb(runtime)


class Agi:
    """The real FastAGI server on port 0 over the test runtime, and the AGI peer
    playing Asterisk against it."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.host, self.port = "127.0.0.1", server.port

    async def call(self, dialled: str, caller: str, *, interface: str | None = None, hangup: bool = False) -> Any:
        from hotline.agi.peer import simulate_call

        result = await simulate_call(self.host, self.port, dialled=dialled, caller=caller,
                                     answer_interface=interface, hangup=hangup)
        if interface is None and not hangup:
            await self.joins_queue(result.uid)
        return result

    async def joins_queue(self, uid: str) -> None:
        """What a real Asterisk reports next over AMI (QueueCallerJoin): the caller is in
        the queue, offered from now (the live-state follower applies the same operation)."""
        from hotline.calls.store import apply_op, make_entry, now

        ctx = self.server.ctx
        async with ctx.store.connection() as conn, conn.transaction():
            await apply_op(conn, make_entry("queue_join", uid, {"at": now().isoformat(), "queue": None}))

    async def hangup(self, uid: str) -> None:
        """The caller hangs up: Asterisk's hangup handler."""
        from hotline.agi.peer import run_call

        await run_call(self.host, self.port, "hangup", {"agi_uniqueid": uid}, [uid, "", "", "16", ""])


@pytest.fixture
async def agi(runtime: Any) -> AsyncIterator[Agi]:
    from hotline.agi.server import FastAgiServer
    from hotline.calls.context import CallContext

    server = FastAgiServer(CallContext.for_runtime(runtime), runtime.settings.agi)
    await server.start("127.0.0.1", 0)
    try:
        yield Agi(server)
    finally:
        await server.stop(grace=1.0)


async def give_phone(pool: asyncpg.Pool, user_id: int, interface: str) -> None:
    """The seat's phone (Asterisk interface), as an administrator configures it."""
    await pool.execute(
        """INSERT INTO seats (user_id, interface) VALUES ($1, $2)
           ON CONFLICT (user_id) DO UPDATE SET interface = EXCLUDED.interface""", user_id, interface)


@pytest.fixture
def phone(pool: asyncpg.Pool) -> Callable[[int, str], Awaitable[None]]:
    return lambda user_id, interface: give_phone(pool, user_id, interface)
