"""Console server side through HTTP and the WebSocket: seat state, screen-pop,
audited reveal, wallboard pushes, access rules, demo mode."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hotline.console import seats
from hotline.demo.service import create_service, ensure_users, seed_day
from hotline.services import NodeOptions


async def _next(ws: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    return (await _collect(ws, {kind}, timeout))[kind]


async def _until(ws: Any, kind: str, check: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The first message of that kind for which ``check(message)`` holds."""
    async with asyncio.timeout(timeout):
        while True:
            msg = json.loads((await ws.receive()).data)
            if msg["type"] == kind and check(msg):
                return msg


async def _collect(ws: Any, kinds: set[str], timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """The latest message of each kind, once every kind has arrived (in any order)."""
    seen: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(timeout):
        while not kinds <= set(seen):
            msg = json.loads((await ws.receive()).data)
            seen[msg["type"]] = msg
    return seen


async def test_seat_states_follow_the_table(api_as) -> None:
    api = await api_as("agent")
    body = await (await api.get("/api/v1/console/seat")).json()
    assert body["seat"]["state"] == "offline"
    resp = await api.put("/api/v1/console/seat", json={"state": "ready"})
    assert resp.status == 200 and (await resp.json())["seat"]["state_name"] == "空闲"
    resp = await api.put("/api/v1/console/seat", json={"state": "after_call"})
    assert resp.status == 409  # after-call work only follows a call
    resp = await api.put("/api/v1/console/seat", json={"state": "break"})
    assert resp.status == 400 and (await resp.json())["error"]["field"] == "reason"
    resp = await api.put("/api/v1/console/seat", json={"state": "break", "reason": "培训"})
    seat = (await resp.json())["seat"]
    assert seat["state"] == "break" and seat["reason"] == "培训"


async def test_screen_pop_masks_and_reveal_is_audited(api_as, place_call, pool) -> None:
    agent = await api_as("agent")
    other = await api_as("agent")
    await place_call("12366", "13900001111", agent_id=None, state="completed")
    call_id = await place_call("12366", "13900001111", agent_id=agent.user.id)
    pop = await (await agent.get(f"/api/v1/console/calls/{call_id}/pop")).json()
    assert pop["line"]["name"] == "纳税缴费服务热线" and pop["line"]["mode_name"] == "分中心"
    assert pop["call"]["caller_masked"] == "139****1111"
    assert "13900001111" not in json.dumps(pop, ensure_ascii=False)
    assert len(pop["history"]) == 1  # the earlier call of the same caller
    assert pop["subcenters"][0]["number"] == "12366"
    assert (await other.post(f"/api/v1/console/calls/{call_id}/reveal")).status == 403
    expert = await api_as("expert", hotline_number="12333")  # not transferred to this expert
    assert (await expert.post(f"/api/v1/console/calls/{call_id}/reveal")).status == 403
    queued = await place_call("12366", "13900002222", state="queued")  # nobody's call yet
    assert (await agent.post(f"/api/v1/console/calls/{queued}/reveal")).status == 403
    resp = await agent.post(f"/api/v1/console/calls/{call_id}/reveal")
    assert (await resp.json())["caller_number"] == "13900001111"
    row = await pool.fetchrow("SELECT user_id, object_id FROM audit_log WHERE action = 'view_caller_number'")
    assert row["user_id"] == agent.user.id and row["object_id"] == str(call_id)


async def test_websocket_pushes_screen_pop_and_seat(api_as, place_call) -> None:
    agent = await api_as("agent")
    async with agent.client.ws_connect("/api/v1/console/ws") as ws:
        assert (await _next(ws, "hello"))["user"]["id"] == agent.user.id
        call_id = await place_call("12333", "13812345678", agent_id=agent.user.id)
        got = await _collect(ws, {"screen_pop", "seat"})
        pop, seat = got["screen_pop"], got["seat"]
        assert pop["call"]["id"] == call_id and pop["line"]["number"] == "12333"
        assert pop["line"]["mode_name"] == "双号并行" and pop["line"]["has_expert_pool"] is True
        assert seat["seat"]["state"] == "on_call" and seat["seat"]["current_call_id"] == call_id


async def test_wallboard_is_pushed_when_calls_change(api_as, place_call) -> None:
    supervisor = await api_as("supervisor")
    agent = await api_as("agent")
    await agent.put("/api/v1/console/seat", json={"state": "ready"})
    async with supervisor.client.ws_connect("/api/v1/console/ws") as ws:
        first = (await _next(ws, "wallboard"))["wallboard"]
        assert first["waiting_total"] == 0 and first["agents"]["ready"] == 1
        await place_call("12345", "13700000001", state="queued")
        await place_call("12333", "13700000002", state="queued")
        # pushed at once for the first call, then again for the second (bursts are coalesced)
        board = (await _until(ws, "wallboard", lambda m: m["wallboard"]["waiting_total"] == 2))["wallboard"]
        assert {(line["hotline_number"], line["waiting"]) for line in board["lines"]} == {("12345", 1), ("12333", 1)}
        assert board["today"]["offered"] == 2 and board["today"]["answered"] == 0


async def test_wallboard_rates_use_offered_as_denominator(pool, runtime, place_call) -> None:
    from hotline.console.wallboard import snapshot

    await place_call("12345", "13700000001", state="completed", wait=5)
    await place_call("12345", "13700000002", state="completed", wait=30)
    await place_call("12345", "13700000003", state="queued")
    await pool.execute("UPDATE calls SET state = 'abandoned', answered_at = NULL WHERE caller_number = '13700000003'")
    today = (await snapshot(pool, runtime.registry, runtime.settings.timezone))["today"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (3, 2, 1)
    assert today["connection_rate"] == round(2 / 3, 4)
    assert today["service_level"] == round(1 / 3, 4)


async def test_role_and_csrf_checks(api_as, client) -> None:
    agent = await api_as("agent")
    assert (await agent.get("/api/v1/console/wallboard")).status == 403
    assert (await agent.get("/api/v1/users")).status == 403
    resp = await agent.client.put("/api/v1/console/seat", json={"state": "ready"})  # no CSRF header
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"
    resp = await agent.put("/api/v1/console/seat", json={"state": "ready"}, headers={"X-CSRF-Token": "forged"})
    assert resp.status == 403
    assert (await client.get("/api/v1/console/seat")).status == 401
    resp = await client.get("/api/v1/console/ws")
    assert resp.status == 401


async def test_websocket_refuses_other_origins(api_as) -> None:
    agent = await api_as("agent")
    resp = await agent.client.get("/api/v1/console/ws", headers={
        "Origin": "http://evil.example", "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 403


async def test_pages_and_assets_are_served_without_cdn(client) -> None:
    for page in ("login", "agent", "expert", "liaison", "supervisor", "admin"):
        resp = await client.get(f"/console/{page}")
        assert resp.status == 200
        html = await resp.text()
        assert 'lang="zh-CN"' in html and "http://" not in html and "https://" not in html
    assert (await client.get("/console/nope")).status == 404
    resp = await client.get("/static/vendor/echarts/echarts.min.js")
    assert resp.status == 200 and len(await resp.read()) > 500_000


async def test_expert_inbox_follows_transfer_events(api_as, place_call, pool) -> None:
    from hotline.events import publish

    expert = await api_as("expert", hotline_number="12333")
    agent = await api_as("agent")
    call_id = await place_call("12333", "13812345678", agent_id=agent.user.id)
    async with expert.client.ws_connect("/api/v1/console/ws") as ws:
        await _next(ws, "hello")
        await publish(pool, "transfer.expert", {"call_id": call_id, "expert_user_id": expert.user.id,
                                                "ticket_id": None, "outcome": "connected"})
        msg = await _next(ws, "transfer")
        assert msg["call"]["id"] == call_id and msg["line"]["number"] == "12333"
    items = (await (await expert.get("/api/v1/console/inbox")).json())["items"]
    assert [i["call_id"] for i in items] == [call_id]
    resp = await expert.post(f"/api/v1/console/inbox/{items[0]['id']}", json={"action": "answer", "answer": "按政策可以转移"})
    assert (await resp.json())["item"]["state"] == "answered"


async def test_demo_mode_only_with_the_flag(runtime) -> None:
    assert create_service(runtime, NodeOptions(demo=False)) is None
    assert create_service(runtime, NodeOptions(demo=True)) is not None


async def test_demo_seeds_users_and_a_day(runtime, pool) -> None:
    import random

    users = await ensure_users(pool, runtime.registry)
    assert {"demo-agent", "demo-expert", "demo-liaison", "demo-supervisor", "demo-admin"} <= set(users)
    again = await ensure_users(pool, runtime.registry)
    assert again["demo-agent"][1] != users["demo-agent"][1]  # a new password at every start
    # the reset's audit row was written by the transaction that reset the accounts
    audit_xid = await pool.fetchval(
        "SELECT xmin::text FROM audit_log WHERE action = 'demo_users_reset' ORDER BY id DESC LIMIT 1")
    user_xids = await pool.fetchval(
        "SELECT array_agg(DISTINCT xmin::text) FROM users WHERE username = ANY($1::text[])", list(again))
    assert user_xids == [audit_xid]
    agents = [users[name][0] for name in ("demo-agent", "demo-agent2")]
    # the clock is injected: five minutes after local midnight (the hour that used to leave
    # "today" empty: the calls went to the evening before)
    from datetime import datetime, timedelta

    midnight = datetime(2026, 3, 2, tzinfo=runtime.settings.tz)
    made = await seed_day(runtime, agents, rng=random.Random(7), now=midnight + timedelta(minutes=5))
    assert made >= 30
    first = await pool.fetchval("SELECT min(started_at) FROM calls WHERE call_uid LIKE 'demo-day-%'")
    assert first >= midnight  # every seeded call is on the day it was seeded for
    assert await seed_day(runtime, agents, rng=random.Random(7), now=midnight + timedelta(hours=9)) == 0  # once a day
    assert await pool.fetchval("SELECT count(*) FROM calls WHERE agent_id IS NOT NULL") > 0
    assert await seats.get_seat(pool, users["demo-agent"][0])


async def test_demo_traffic_goes_through_fastagi(runtime, pool, agi, api_as) -> None:
    """A simulated call is played against the real FastAGI server: it queues, the
    visitor's ready demo agent gets the screen-pop, the caller hangs up."""
    import random

    from hotline.demo.traffic import AgiDriver, Traffic

    users = await ensure_users(pool, runtime.registry)
    agent_id = users["demo-agent"][0]
    await seats.set_state(pool, agent_id, "ready")
    traffic = Traffic(runtime, AgiDriver(runtime, agi.host, agi.port), simulated_agents=[],
                      rng=random.Random(3), pace=0.005)
    traffic.give_up = 0.0
    await traffic.one_call()
    call = await pool.fetchrow("SELECT state, agent_id, call_uid, queued_at FROM calls WHERE call_uid LIKE 'demo-live-%'")
    assert call["state"] == "completed" and call["agent_id"] == agent_id and call["queued_at"] is not None
    assert (await seats.get_seat(pool, agent_id)).state == "after_call"


async def test_logout_everywhere_closes_the_push_channel(api_as, server) -> None:
    from hotline.web.routes.console import HUB

    server.app[HUB].session_check = 0.1
    agent = await api_as("agent")
    async with agent.client.ws_connect("/api/v1/console/ws") as ws:
        await _next(ws, "hello")
        assert (await agent.post("/api/v1/auth/logout-all")).status == 200
        async with asyncio.timeout(5):
            msg = await ws.receive()
            while msg.type.name == "TEXT":
                msg = await ws.receive()
        assert ws.close_code == 4401


async def test_screen_pop_open_tickets_mask_the_callers_name(api_as, place_call) -> None:
    """The pop's ticket summaries are documented as masked: the number and the name."""
    agent = await api_as("agent")
    first = await place_call("12333", "13900005555", agent_id=agent.user.id)
    resp = await agent.post(f"/api/v1/console/calls/{first}/ticket",  # the one intake path, from the console
                            json={"subject": "咨询社保关系转移", "caller_name": "张三丰", "kind": "enquiry"})
    assert resp.status == 201, await resp.text()
    ticket = (await resp.json())["ticket"]
    assert ticket["hotline_number"] == "12333"  # line and number come from the call, not the browser
    # the same intake as the tickets API: the same refusals, whatever the route
    for bad, field, code in [({"subject": "x", "urgency": "asap"}, "urgency", "invalid_choice"),
                             ({"subject": "x", "dispatch": "now"}, "dispatch", "invalid_type"),
                             ({"subject": "x", "confidential": "yes"}, "confidential", "invalid_type")]:
        refused = await agent.post(f"/api/v1/console/calls/{first}/ticket", json=bad)
        err = (await refused.json())["error"]
        assert refused.status == 400 and (err["field"], err["code"]) == (field, code), err
    again = await place_call("12333", "13900005555", agent_id=agent.user.id)
    pop = await (await agent.get(f"/api/v1/console/calls/{again}/pop")).json()
    summary = next(t for t in pop["open_tickets"] if t["id"] == ticket["id"])
    assert summary["caller_name"] == "张**" and summary["caller_number"] == "139****5555"
    text = json.dumps(pop, ensure_ascii=False)
    assert "张三丰" not in text and "13900005555" not in text
