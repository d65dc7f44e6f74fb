"""Demo mode is for a disposable database: it refuses one with real users, and its
accounts (an admin among them) do not stay usable after the demo stops."""

from __future__ import annotations

import asyncpg
import pytest
from support import TEST_PASSWORD

from hotline.auth import create_user
from hotline.demo.service import DemoService, ensure_users, refuse_real_users
from hotline.errors import ConfigError
from hotline.runtime import Runtime


async def test_demo_refuses_a_database_with_real_users(runtime: Runtime, pool: asyncpg.Pool,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    await ensure_users(pool, runtime.registry)
    await refuse_real_users(pool)  # only the demo's own people: fine
    await create_user(pool, "zhang.wei", TEST_PASSWORD, ("supervisor",))
    with pytest.raises(ConfigError) as refused:
        await refuse_real_users(pool)
    assert "1 个真实用户" in refused.value.message and refused.value.field == "demo"
    with pytest.raises(ConfigError):  # the service itself refuses before touching anything
        await DemoService(runtime).start()
    assert await pool.fetchval("SELECT count(*) FROM calls") == 0
    monkeypatch.setenv("HOTLINE_DEMO_FORCE", "1")  # a disposable copy, said explicitly
    await refuse_real_users(pool)


async def test_demo_accounts_are_deactivated_when_the_demo_stops(
    runtime: Runtime, pool: asyncpg.Pool, client: object,
) -> None:
    service = DemoService(runtime)
    service.users = await ensure_users(pool, runtime.registry)
    admin_password = service.users["demo-admin"][1]
    resp = await client.post("/api/v1/auth/login", json={"username": "demo-admin", "password": admin_password})  # type: ignore[attr-defined]
    assert resp.status == 200
    await service.stop()
    assert await pool.fetchval("SELECT count(*) FROM users WHERE username LIKE 'demo-%' AND active") == 0
    me = await client.get("/api/v1/auth/me")  # type: ignore[attr-defined]
    assert me.status == 401  # the admin's session ended with the demo
    resp = await client.post("/api/v1/auth/login", json={"username": "demo-admin", "password": admin_password})  # type: ignore[attr-defined]
    assert resp.status == 401
