"""Upstream push through the outbox: outage, in-order drain, idempotency keys, dead-letter.
The provincial platform is played by a real local aiohttp server."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web
from support import wait_for

from hotline.upstream.config import UpstreamSettings
from hotline.upstream.worker import UpstreamWorker


class Platform:
    """A stand-in provincial endpoint: applies each idempotency key once."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.applied: list[str] = []
        self.requests = 0
        self.fail_next = 0          # answer 503 after applying (a lost answer)
        self.refuse_uid: str | None = None
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.json()
        assert request.headers["Idempotency-Key"].startswith("hotline:")
        uids = [r["data"].get("call_uid") for r in body["records"]]
        if self.refuse_uid in uids:
            return web.json_response({"error": "schema violation"}, status=422)
        for record in body["records"]:
            if record["idempotency_key"] not in self.applied:
                self.applied.append(record["idempotency_key"])
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=503, text="busy")
        return web.json_response({"ok": True})

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/push", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def down(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def platform():
    p = Platform()
    yield p
    await p.down()


async def _calls(pool, *uids: str) -> None:
    for uid in uids:
        await pool.execute("INSERT INTO calls (call_uid, hotline_number) VALUES ($1, '12345')", uid)


async def _change_keys(pool) -> list[str]:
    rows = await pool.fetch("SELECT txid::text AS txid, id FROM change_log ORDER BY txid, id")
    return [f"hotline:{r['txid']}-{r['id']}" for r in rows]


async def test_outage_loses_nothing_and_drains_in_order(platform, pool, api_as) -> None:
    await _calls(pool, "a", "b", "c", "d", "e")
    await pool.execute("UPDATE calls SET state = 'queued' WHERE call_uid IN ('b', 'd')")
    cfg = UpstreamSettings(url=platform.url, batch_size=2, max_attempts=2, backoff_base=0.0)
    worker = UpstreamWorker(pool, cfg)
    try:
        # the platform is down for far more rounds than max_attempts: nothing dead-letters
        outcomes = [await worker.step() for _ in range(6)]
        assert outcomes == ["failed"] * 6
        state = await pool.fetchrow("SELECT sent_total, dead_total, last_error FROM upstream_state")
        assert state["sent_total"] == 0 and state["dead_total"] == 0
        assert "ClientConnectorError" in state["last_error"] or "Connect" in state["last_error"]
        await _calls(pool, "f")  # traffic goes on during the outage
        await platform.up()
        platform.fail_next = 1  # the first answer after the outage is lost: the batch is resent
        outcomes = await worker.drain()
        assert outcomes[-1] == "idle" and "dead" not in outcomes
    finally:
        await worker.close()
    assert platform.applied == await _change_keys(pool)  # every change, once, in order
    assert len(platform.applied) == 8
    state = await pool.fetchrow("SELECT sent_total, dead_total, head_attempts FROM upstream_state")
    assert (state["sent_total"], state["dead_total"], state["head_attempts"]) == (8, 0, 0)
    supervisor = await api_as("supervisor")
    body = await (await supervisor.get("/api/v1/upstream/status")).json()
    assert body["backlog"] == 0 and body["sent_total"] == 8


async def test_refused_record_goes_to_dead_letter_after_n_attempts(platform, pool, api_as, client) -> None:
    await platform.up()
    platform.refuse_uid = "poison"
    await _calls(pool, "ok-1", "poison", "ok-2")
    cfg = UpstreamSettings(url=platform.url, batch_size=10, max_attempts=3, backoff_base=0.0)
    worker = UpstreamWorker(pool, cfg)
    try:
        outcomes = await worker.drain()
        assert outcomes.count("dead") == 1 and outcomes[-1] == "idle"
        # the batch was refused once, split, then the poison record refused 3 times
        assert outcomes == ["failed", "sent", "failed", "failed", "dead", "sent", "idle"]
        keys = await _change_keys(pool)
        assert platform.applied == [keys[0], keys[2]]
        dead = await pool.fetchrow("SELECT * FROM upstream_dead_letters")
        assert dead["attempts"] == 3 and "HTTP 422" in dead["last_error"]
        assert dead["data"]["call_uid"] == "poison"

        supervisor = await api_as("supervisor")
        status = await (await supervisor.get("/api/v1/upstream/status")).json()
        assert (status["dead_total"], status["dead_now"], status["sent_total"]) == (1, 1, 2)
        listed = await (await supervisor.get("/api/v1/upstream/dead-letters")).json()
        assert [i["entity_id"] for i in listed["items"]] == [dead["entity_id"]]
        metrics = await (await client.get("/metrics")).text()
        assert "hotline_upstream_dead_letters_total" in metrics and "hotline_upstream_sent_total" in metrics

        # the platform is fixed; an admin puts the record back
        platform.refuse_uid = None
        assert (await supervisor.post(f"/api/v1/upstream/dead-letters/{dead['id']}/requeue")).status == 403
        admin = await api_as("admin")
        resp = await admin.post(f"/api/v1/upstream/dead-letters/{dead['id']}/requeue")
        assert resp.status == 200
        await worker.drain()
        assert await pool.fetchval("SELECT status FROM upstream_dead_letters") == "sent"
        assert platform.applied == [keys[0], keys[2], keys[1]]
    finally:
        await worker.close()


async def test_node_service_pushes_changes_as_they_commit(platform, runtime, pool) -> None:
    from dataclasses import replace

    from hotline.services import NodeOptions
    from hotline.upstream.service import create_service

    assert create_service(runtime, NodeOptions()) is None  # no [upstream] url: no worker
    runtime.settings = replace(runtime.settings, extra={**runtime.settings.extra,
                                                        "upstream": {"url": platform.url, "backoff_base": 0.05}})
    service = create_service(runtime, NodeOptions())
    assert service is not None and service.role == "workers"
    await platform.up()
    await service.start()
    try:
        await _calls(pool, "live-1", "live-2")
        await wait_for(lambda: len(platform.applied) >= 2, what="both changes pushed")
    finally:
        await service.stop()
    assert platform.applied == await _change_keys(pool)


async def test_backoff_grows_and_is_capped_and_the_worker_waits(pool) -> None:
    from hotline.upstream.worker import backoff

    cfg = UpstreamSettings(url=f"http://127.0.0.1:{_free_port()}/push", backoff_base=2.0, backoff_max=300.0)
    assert [backoff(cfg, n) for n in (1, 2, 3, 4, 8, 9, 20)] == [2, 4, 8, 16, 256, 300, 300]
    await _calls(pool, "x")
    worker = UpstreamWorker(pool, cfg)
    try:
        assert await worker.step() == "failed"   # nobody listening
        assert await worker.step() == "waiting"  # backing off: no request sent
        wait = await pool.fetchval("SELECT extract(epoch FROM next_attempt_at - last_attempt_at) FROM upstream_state")
        assert 1.5 <= float(wait) <= 2.5
    finally:
        await worker.close()
