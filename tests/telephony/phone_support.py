"""The whole phone system in a test (helpers; the fixtures are in conftest.py): a real Asterisk 22 (``hotline/telephony/sandbox.py``)
running the dialplan and queues ``hotline dialplan`` generates, and the backend's real
node services (FastAGI, the Asterisk records followers, the AMI telephony service)
over the test database.

The registry is the shipped one with the five sub-centres dialled as Local channels
that answer, ring out, are busy or are congested (Asterisk here has no SIP)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer
from support import TEST_PASSWORD, wait_for

from hotline.agi.live_transfer import ami_mover
from hotline.auth import create_user
from hotline.calls.dialplan import DialplanOptions, generate_extensions, generate_queues
from hotline.calls.settings import CallSettings
from hotline.config import Settings
from hotline.db import Database
from hotline.db.pool import create_pool
from hotline.registry import Registry, sync_registry
from hotline.runtime import Runtime
from hotline.services import NodeOptions, Service, create_services
from hotline.telephony.sandbox import AsteriskSandbox

#: how each sub-centre behaves in the sandbox (a context in hotline/telephony/sandbox.py)
SUBCENTRES = {"12367": "answer", "12366": "ringout", "12360": "busy", "12378": "congest", "12386": "answer"}
#: seconds a sub-centre rings before the call comes back (the registry's minimum)
SUBCENTRE_TIMEOUT = 5
#: node services a phone-system test runs (not the web, the scheduler or the demo)
SERVICES = ("agi", "asterisk-records", "telephony")








@dataclass
class PhoneSystem:
    """The backend's services and a real Asterisk, wired together."""

    runtime: Runtime
    pbx: AsteriskSandbox
    registry: Registry
    services: list[Service] = field(default_factory=list)
    agi_port: int = 0

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    def service(self, name: str) -> Any:
        return next(s for s in self.services if s.name == name)

    async def rx(self, command: str) -> str:
        return await asyncio.to_thread(self.pbx.rx, command)

    async def call(self, line: str, caller: str = "13800138000", *, stay: float = 20) -> None:
        await asyncio.to_thread(self.pbx.call, line, caller, stay=stay)

    async def eventually(self, check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0,
                         what: str = "condition") -> Any:
        """Poll ``check`` until it returns something truthy (Asterisk works in real time)."""
        return await wait_for(check, timeout=timeout, what=what, interval=0.2)

    async def calls(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT * FROM calls ORDER BY id")

    async def stop_services(self, names: tuple[str, ...] | None = None) -> None:
        for service in reversed(list(self.services)):
            if names is None or service.name in names:
                await service.stop()
                self.services.remove(service)

    async def start_services(self, names: tuple[str, ...] = SERVICES) -> None:
        """Start (again) the named node services, as a restarted backend node would
        (FastAGI comes back on its configured port, so set one for a restart test)."""
        for service in create_services(self.runtime, NodeOptions(web=False, scheduler=False)):
            if service.name in names:
                await service.start()
                self.services.append(service)


def phone_settings(settings: Settings, pbx: AsteriskSandbox, **overrides: dict[str, Any]) -> Settings:
    """The node's settings wired to ``pbx``, its records followed every 0.2 s."""
    ingest = {"follow_interval": 0.2, **overrides.pop("ingest", {})}
    return pbx.wire(settings, ingest=ingest, **overrides)


async def start_phone_system(
    settings: Settings, registry: Registry, db_url: str, pbx: AsteriskSandbox, *,
    services: tuple[str, ...] = SERVICES, **overrides: dict[str, Any],
) -> PhoneSystem:
    settings = phone_settings(settings, pbx, **overrides)
    pool = await create_pool(db_url, settings, min_size=1, max_size=10)
    async with pool.acquire() as conn:
        await sync_registry(conn, registry)
    runtime = Runtime(settings, registry, Database(pool=pool, url=db_url), channel_mover=ami_mover)
    system = PhoneSystem(runtime, pbx, registry)
    found = [s for s in create_services(runtime, NodeOptions(web=False, scheduler=False)) if s.name in services]
    agi = [s for s in found if s.name == "agi"]
    for service in agi:  # FastAGI first: the dialplan needs its port
        await service.start()
        system.services.append(service)
        system.agi_port = service.server.port  # type: ignore[attr-defined]
    options = DialplanOptions(f"agi://127.0.0.1:{system.agi_port or 9}",
                              recordings_dir=CallSettings.from_settings(settings).recordings_dir)
    pbx.write_hotline(generate_extensions(registry, options), generate_queues(registry, CallSettings.from_settings(settings)))
    await asyncio.to_thread(pbx.start)
    for service in found:
        if service not in agi:
            await service.start()
            system.services.append(service)
    return system


async def stop_phone_system(system: PhoneSystem) -> None:
    try:
        await system.stop_services()
    finally:
        await asyncio.to_thread(system.pbx.stop)
        await system.runtime.close()
        await system.runtime.pool.close()


async def signed_in(server: TestServer, username: str) -> tuple[aiohttp.ClientSession, str]:
    """A session of ``username`` on the running ``server`` (closing it leaves the server
    running) and its CSRF token."""
    client = aiohttp.ClientSession(base_url=str(server.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True))
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD})
    assert resp.status == 200, await resp.text()
    return client, (await resp.json())["csrf_token"]


async def answered_by_agent(system: PhoneSystem, line: str, caller: str, *, talk: int = 60) -> tuple[Any, int]:
    """A citizen on ``line`` talking to an agent (who would talk ``talk`` seconds)."""
    agent = await create_user(system.pool, "agent-8001", TEST_PASSWORD, ("agent",))
    await system.pool.execute(
        "INSERT INTO seats (user_id, state, interface) VALUES ($1, 'ready', 'Local/8001@agents')", agent.id)
    await system.rx(f"dialplan set global TALK_8001 {talk}")
    for queue in ("hotline-12345", f"hotline-12345-{system.registry.get(line).skill}"):  # type: ignore[union-attr]
        await system.rx(f"queue add member Local/8001@agents to {queue}")
    await system.call(line, caller, stay=90)

    async def talking() -> Any:
        return await system.pool.fetchrow(
            "SELECT * FROM calls WHERE caller_number = $1 AND agent_id = $2 AND state = 'answered'", caller, agent.id)

    return await system.eventually(talking, what="the agent answering"), agent.id
