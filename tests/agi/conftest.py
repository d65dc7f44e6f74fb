"""Fixtures for the telephony tests: a FastAGI server on a real socket over the
test database, and helpers to read call records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from support import wait_for

from hotline.agi.server import FastAgiServer
from hotline.calls.context import CallContext
from hotline.runtime import Runtime


class FakeKb:
    """Test double of the knowledge base's suggest()."""

    name = "fake-kb"

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def suggest(self, runtime: Any, *, hotline_number: str | None, text: str | None, limit: int = 5) -> list[dict[str, Any]]:
        self.calls.append({"hotline_number": hotline_number, "text": text, "limit": limit})
        return [{"id": f"kb-{hotline_number or '12345'}-00{i}", "title": "t", "score": 1.0 / i, "snippet": ""}
                for i in range(1, 4)]


@dataclass
class AgiHarness:
    ctx: CallContext
    server: FastAgiServer
    host: str
    port: int
    kb: FakeKb

    async def idle(self) -> None:
        """Wait until the server has finished every session (a peer may leave first)."""
        await wait_for(lambda: self.server.active == 0, what="every FastAGI session finished", interval=0.01)

    async def call_row(self, pool: asyncpg.Pool, uid: str) -> asyncpg.Record | None:
        await self.idle()
        return await pool.fetchrow("SELECT * FROM calls WHERE call_uid = $1", uid)


async def start_harness(runtime: Runtime, clock: Any = None) -> AgiHarness:
    kb = FakeKb()
    ctx = CallContext.for_runtime(runtime, kb=kb, clock=clock)
    server = FastAgiServer(ctx, runtime.settings.agi)
    await server.start("127.0.0.1", 0)
    assert server.port is not None
    return AgiHarness(ctx, server, "127.0.0.1", server.port, kb)


@pytest.fixture
async def agi(runtime: Runtime) -> AsyncIterator[AgiHarness]:
    harness = await start_harness(runtime)
    try:
        yield harness
    finally:
        await harness.server.stop(grace=1.0)


@pytest.fixture
async def make_harness() -> AsyncIterator[Any]:
    """``await make_harness(runtime, clock=...)``: a server over another runtime/clock."""
    started: list[AgiHarness] = []

    async def make(runtime: Runtime, clock: Any = None) -> AgiHarness:
        harness = await start_harness(runtime, clock)
        started.append(harness)
        return harness

    try:
        yield make
    finally:
        for harness in started:
            await harness.server.stop(grace=1.0)


def fixed_clock(moment: datetime) -> Any:
    return lambda: moment
