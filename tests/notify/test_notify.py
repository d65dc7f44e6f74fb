"""The notifications outbox against a real local HTTP gateway (an aiohttp server): the
receipt, the result and the reminders are queued with their changes; a gateway that is
down loses nothing (delivered after it recovers); a gateway that refuses a message
makes it a dead letter with the reason after max_attempts, listed to supervisors."""

import socket
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from tickets_support import LEAD, PATHS, Cast, drive, new_ticket, who

from hotline.calendar.core import SHANGHAI
from hotline.config import Settings
from hotline.errors import ConfigError
from hotline.notify import NotifySettings, notify_settings, render
from hotline.notify.worker import NotifyWorker, remind
from hotline.tickets.workflow import apply

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)


class Gateway:
    """A stand-in SMS gateway: a real HTTP server whose answers the test switches."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.received: list[tuple[str, dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.mode == "down":
            return web.Response(status=503, text="maintenance")
        if self.mode == "refuse":
            return web.json_response({"error": "invalid recipient"}, status=400)
        self.received.append((request.headers["Idempotency-Key"], body))
        return web.json_response({"accepted": True})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/sms", self.handle)
        return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _statuses(pool: asyncpg.Pool) -> list[tuple[str, str, int]]:
    rows = await pool.fetch("SELECT kind, status, attempts FROM notifications ORDER BY id")
    return [(r["kind"], r["status"], r["attempts"]) for r in rows]


async def test_a_gateway_outage_loses_nothing(pool: asyncpg.Pool, cast: Cast) -> None:
    port = _free_port()
    cfg = NotifySettings(url=f"http://127.0.0.1:{port}/sms", backoff_base=10, backoff_max=60, max_attempts=2)
    async with pool.acquire() as conn:
        first = await new_ticket(conn, cast, at=NOW, caller_number="13800001111")
        second = await new_ticket(conn, cast, at=NOW, caller_number="", contact_number="13900002222")
        await new_ticket(conn, cast, at=NOW, caller_number="")  # anonymous: nobody to tell
    numbers = [await pool.fetchval("SELECT number FROM tickets WHERE id = $1", t) for t in (first, second)]
    gateway = Gateway()
    worker = NotifyWorker(pool, cfg, SHANGHAI)
    server = TestServer(gateway.app(), host="127.0.0.1", port=port)
    try:
        assert (await worker.step(NOW))["failed"] == 1          # nothing listening: connection refused
        assert (await worker.step(NOW + timedelta(seconds=5)))["waiting"] == 1  # backing off: nothing sent
        await server.start_server()
        gateway.mode = "down"                                    # up, but answering 503
        assert (await worker.step(NOW + timedelta(seconds=10)))["failed"] == 1
        assert worker.resume_at == NOW + timedelta(seconds=30)   # 10 s, then 20 s
        assert await _statuses(pool) == [("receipt", "pending", 0)] * 2  # an outage counts no attempt
        gateway.mode = "ok"
        assert (await worker.step(NOW + timedelta(seconds=30)))["sent"] == 2
    finally:
        await worker.close()
        await server.close()
    assert await _statuses(pool) == [("receipt", "sent", 0)] * 2
    assert [b["to"] for _, b in gateway.received] == ["13800001111", "13900002222"]
    assert [b["ticket_number"] for _, b in gateway.received] == numbers
    assert numbers[0] in gateway.received[0][1]["text"] and "已受理" in gateway.received[0][1]["text"]
    assert gateway.received[0][0].startswith("hotline-notify:")


async def test_a_refused_notification_becomes_a_dead_letter_visible_to_supervisors(
        pool: asyncpg.Pool, cast: Cast, api_as) -> None:  # noqa: ANN001
    gateway = Gateway()
    gateway.mode = "refuse"
    server = TestServer(gateway.app(), host="127.0.0.1")
    await server.start_server()
    cfg = NotifySettings(url=str(server.make_url("/sms")), backoff_base=10, backoff_max=60, max_attempts=3)
    worker = NotifyWorker(pool, cfg, SHANGHAI)
    try:
        async with pool.acquire() as conn:
            await new_ticket(conn, cast, at=NOW, caller_number="13800001111")
        assert (await worker.step(NOW))["failed"] == 1
        assert (await worker.step(NOW + timedelta(seconds=9)))["failed"] == 0   # waits backoff(1) = 10 s
        assert (await worker.step(NOW + timedelta(seconds=10)))["failed"] == 1
        assert (await worker.step(NOW + timedelta(seconds=30)))["dead"] == 1     # 3rd refusal
        assert await _statuses(pool) == [("receipt", "dead", 3)]
        assert "HTTP 400" in await pool.fetchval("SELECT last_error FROM notifications")

        supervisor = await api_as("supervisor")
        listed = await (await supervisor.get("/api/v1/notifications?status=dead")).json()
        assert listed["counts"] == {"pending": 0, "sent": 0, "dead": 1}
        item = listed["items"][0]
        assert item["recipient"] == "138****1111" and "invalid recipient" in item["last_error"]
        assert (await (await api_as("agent")).get("/api/v1/notifications")).status == 403
        # fixed at the gateway: the supervisor requeues it and it goes out
        resp = await supervisor.post(f"/api/v1/notifications/{item['id']}/requeue")
        assert resp.status == 200, await resp.text()
        assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'notification_requeued'") == 1
        gateway.mode = "ok"
        assert (await worker.step(datetime.now(SHANGHAI) + timedelta(seconds=1)))["sent"] == 1
        assert await _statuses(pool) == [("receipt", "sent", 0)]
    finally:
        await worker.close()
        await server.close()


async def test_receipt_result_and_reminders_are_queued(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        closed = await drive(conn, cast, "closed")  # receipt at intake, result when it closes
        await conn.execute("UPDATE units SET contact_phone = '05802281234' WHERE code = $1", LEAD)
        waiting = await new_ticket(conn, cast, at=NOW, caller_number="")
        await apply(conn, waiting, "dispatch", cast.agent, {"unit_code": LEAD}, at=NOW)
        deadline = await conn.fetchval(
            "SELECT deadline FROM sla_clocks WHERE ticket_id = $1 AND stage = 'sign' AND stopped_at IS NULL", waiting)
    kinds = [(r["kind"], r["ticket_id"]) for r in await pool.fetch("SELECT kind, ticket_id FROM notifications "
                                                                      "ORDER BY id")]
    assert kinds == [("receipt", closed), ("result", closed)]
    cfg = NotifySettings(remind_before_hours=4, remind_stages=("sign",))
    assert await remind(pool, cfg, deadline - timedelta(hours=5)) == 0   # not yet
    assert await remind(pool, cfg, deadline - timedelta(hours=3)) == 1
    assert await remind(pool, cfg, deadline - timedelta(hours=1)) == 0   # once per clock and deadline
    row = await pool.fetchrow("SELECT recipient, payload FROM notifications WHERE kind = 'reminder'")
    assert row["recipient"] == "05802281234"
    text = render(NotifySettings(), "reminder", row["payload"], SHANGHAI)
    assert "签收" in text and deadline.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") in text
    result = await pool.fetchval("SELECT payload FROM notifications WHERE kind = 'result'")
    assert "办理完毕" in render(NotifySettings(), "result", result, SHANGHAI)


async def test_one_result_reaches_every_merged_caller(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        master = await new_ticket(conn, cast, caller_number="13800001111")
        duplicate = await new_ticket(conn, cast, caller_number="13900003333")
        await apply(conn, duplicate, "merge", cast.dispatcher, {"master_id": master})
        for action, actor, data in PATHS["closed"]:
            await apply(conn, master, action, who(cast, actor), dict(data))
    results = await pool.fetch("SELECT ticket_id, recipient, payload->>'number' AS number FROM notifications "
                               "WHERE kind = 'result' ORDER BY ticket_id")
    numbers = {r["id"]: r["number"] for r in await pool.fetch("SELECT id, number FROM tickets")}
    assert [(r["ticket_id"], r["recipient"], r["number"]) for r in results] == [
        (master, "13800001111", numbers[master]), (duplicate, "13900003333", numbers[duplicate])]


async def test_the_worker_runs_as_a_node_service(pool: asyncpg.Pool, cast: Cast, runtime) -> None:  # noqa: ANN001
    from dataclasses import replace

    from support import wait_for

    from hotline.notify.service import create_service
    from hotline.services import NodeOptions

    assert create_service(runtime, NodeOptions()) is None  # no [notify] url: nothing is sent
    gateway = Gateway()
    server = TestServer(gateway.app(), host="127.0.0.1")
    await server.start_server()
    runtime.settings = replace(runtime.settings, extra={**runtime.settings.extra,
                                                        "notify": {"url": str(server.make_url("/sms"))}})
    service = create_service(runtime, NodeOptions())
    assert service is not None and service.role == "workers"
    await service.start()
    try:
        async with pool.acquire() as conn:
            await new_ticket(conn, cast, caller_number="13800001111")
        await wait_for(lambda: len(gateway.received) == 1, what="the receipt delivered")
    finally:
        await service.stop()
        await server.close()
    assert await _statuses(pool) == [("receipt", "sent", 0)]


def test_the_settings_are_checked_at_start() -> None:
    with pytest.raises(ConfigError) as err:
        notify_settings(Settings(extra={"notify": {"receipt_template": "您的电话{phone}"}}))
    assert err.value.field == "notify.receipt_template"
    with pytest.raises(ConfigError):
        notify_settings(Settings(extra={"notify": {"url": "ftp://gateway"}}))
    assert notify_settings(Settings(extra={"notify": {"url": "http://gw/sms", "max_attempts": 2}})).max_attempts == 2
