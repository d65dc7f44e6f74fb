"""Helpers of the hostile tests (import as ``from security_support import ...``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from hotline.runtime import Runtime
from hotline.web import create_app


async def place_call(pool: asyncpg.Pool, *, line: str = "12345", caller: str = "13812345678",
                     agent_id: int | None = None, state: str = "answered") -> int:
    """A call row as the AGI would have written it (the test arranges state, it does not route)."""
    return int(await pool.fetchval(
        """INSERT INTO calls (call_uid, hotline_number, caller_number, caller_kind, route, queue, state,
                              started_at, answered_at, agent_id)
           VALUES ($1, $2, $3, 'mobile', 'platform', 'q-12345', $4, now(), now(), $5) RETURNING id""",
        f"sec-{uuid.uuid4().hex}", line, caller, state, agent_id))


@asynccontextmanager
async def client_with(runtime: Runtime, **web_changes: Any) -> AsyncIterator[TestClient]:
    """A web app on the same database with some ``[web]`` settings changed."""
    settings = replace(runtime.settings, web=replace(runtime.settings.web, **web_changes))
    changed = Runtime(settings, runtime.registry, runtime.db)
    client = TestClient(TestServer(create_app(settings, runtime.registry, runtime=changed)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
