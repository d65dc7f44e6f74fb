"""The FastAGI node service as ``hotline serve`` runs it: own pool, replay loop."""

from __future__ import annotations

import dataclasses

import asyncpg
from support import wait_for

from hotline.agi.peer import run_call
from hotline.agi.service import AgiService, create_service
from hotline.calls.store import make_entry
from hotline.runtime import Runtime
from hotline.services import NodeOptions, create_services


async def test_service_serves_and_replays_the_journal_by_itself(runtime: Runtime, pool: asyncpg.Pool) -> None:
    extra = dict(runtime.settings.extra)
    extra["calls"] = {"journal_replay_interval": 0.1}
    rt = Runtime(dataclasses.replace(runtime.settings, extra=extra), runtime.registry, runtime.db)
    service = create_service(rt, NodeOptions())
    assert isinstance(service, AgiService) and service.role == "agi"
    await service.start()
    try:
        assert service.server is not None
        port = service.server.port
        assert service.describe() == f"FastAGI: agi://127.0.0.1:{port}"
        t = await run_call("127.0.0.1", port, "incoming?line=12345", {"agi_uniqueid": "svc-1"})
        assert t.var("HOTLINE_ROUTE") == "platform" and t.var("HOTLINE_CALL_ID")
        # something journaled while the database was away is replayed without anyone asking
        assert service.ctx is not None
        service.ctx.journal.append(make_entry("start", "svc-journaled", {"hotline_number": "12366",
                                                                          "route": "subcenter"}))
        await wait_for(lambda: pool.fetchval("SELECT 1 FROM calls WHERE call_uid = 'svc-journaled'"),
                       what="the journaled call replayed")
        assert await pool.fetchval("SELECT route FROM calls WHERE call_uid = 'svc-journaled'") == "subcenter"
    finally:
        await service.stop()
    assert service.pool is None  # its own pool is closed with it
    names = [s.name for s in create_services(rt, NodeOptions(agi=False))]
    assert "agi" not in names
