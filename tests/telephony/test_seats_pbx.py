"""Seats drive Asterisk queue membership, on a real Asterisk 22: an admin gives a seat
its phone and skills through the API, the person's 置闲/小休/离线 clicks make the
phone a member / paused member / absent in ``queue show``, the telephony service
reconciles after an Asterisk restart and removes members nobody wants, a PBX that
refuses or cannot be reached is shown to the person, and after-call work ends
after ``[calls] wrapup_seconds``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from phone_support import PhoneSystem, start_phone_system, stop_phone_system
from support import TEST_PASSWORD

from hotline.auth import create_user
from hotline.calls.dialplan import generate_queues
from hotline.calls.settings import CallSettings
from hotline.web import create_app

PLATFORM = "hotline-12345"
HRSS = "hotline-12345-hrss"  # the skill queue of 12333 (dual line, skill hrss)
PHONE = "Local/8001@agents"


class Api:
    """A signed-in user of the web API (CSRF header on writes)."""

    def __init__(self, client: TestClient, user: Any, csrf: str) -> None:
        self.client, self.user, self.csrf = client, user, csrf

    async def get(self, path: str) -> tuple[int, Any]:
        resp = await self.client.get(path)
        return resp.status, await resp.json()

    async def put(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        resp = await self.client.put(path, json=body, headers={"X-CSRF-Token": self.csrf})
        return resp.status, await resp.json()

    async def seat(self, state: str, reason: str | None = None) -> tuple[int, Any]:
        return await self.put("/api/v1/console/seat", {"state": state, "reason": reason})


Users = Callable[..., Awaitable[Api]]


@asynccontextmanager
async def _web(system: PhoneSystem) -> AsyncIterator[Users]:
    runtime = system.runtime
    server = TestServer(create_app(runtime.settings, runtime.registry, runtime=runtime))
    await server.start_server()
    clients: list[TestClient] = []

    async def make(*roles: str, **kwargs: Any) -> Api:
        username = f"{roles[0]}-{uuid.uuid4().hex[:6]}"
        user = await create_user(system.pool, username, TEST_PASSWORD, roles, **kwargs)
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        resp = await client.post("/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD})
        assert resp.status == 200, await resp.text()
        return Api(client, user, (await resp.json())["csrf_token"])

    try:
        yield make
    finally:
        for client in clients:
            await client.close()
        await server.close()


@pytest.fixture
async def users(phone_system: PhoneSystem) -> AsyncIterator[Users]:
    async with _web(phone_system) as make:
        yield make


async def members(system: PhoneSystem, queue: str) -> dict[str, str]:
    return await asyncio.to_thread(system.pbx.queue_members, queue)


async def give_phone(admin: Api, who: Api, interface: str, skills: list[str] | None = None) -> Any:
    status, body = await admin.put(f"/api/v1/seats/{who.user.id}/phone",
                                   {"interface": interface, "skills": skills or []})
    assert status == 200, body
    return body


# -- phones and skills ----------------------------------------------------------------
async def test_admin_gives_phone_and_skills_and_bad_ones_are_refused_by_name(
        phone_system: PhoneSystem, users: Users) -> None:
    admin, supervisor = await users("admin"), await users("supervisor")
    agent, other = await users("agent", display_name="王晓燕"), await users("agent")
    body = await give_phone(admin, agent, PHONE, ["hrss", "hrss", "transport"])
    assert body["interface"] == PHONE and body["skills"] == ["hrss", "transport"]
    assert body["pbx_updated"] is True  # nothing to change while offline, but Asterisk was asked

    status, listing = await supervisor.get("/api/v1/seats/phones")
    assert status == 200
    mine = next(i for i in listing["items"] if i["user_id"] == agent.user.id)
    assert mine["interface"] == PHONE and mine["skills"] == ["hrss", "transport"]
    assert mine["queues"] == [PLATFORM, HRSS, "hotline-12345-transport"]
    assert any(s["skill"] == "hrss" and s["queue"] == HRSS for s in listing["skills"])

    refusals = [
        ({"interface": PHONE}, 409, "interface", PHONE),                      # another seat's phone
        ({"interface": "PJSIP/80 01"}, 400, "interface", "PJSIP/80 01"),      # a space
        ({"interface": "PJSIP/8002,tt"}, 400, "interface", "PJSIP/8002,tt"),  # would split a dial string
        ({"interface": "PJSIP/8002\r\nAction: Logoff"}, 400, "interface", None),
        ({"interface": "8002"}, 400, "interface", "8002"),                    # no technology
        ({"interface": "PJSIP/" + "8" * 90}, 400, "interface", None),         # too long
        ({"interface": "PJSIP/8002", "skills": ["tax", "plumbing"]}, 400, "skills", "plumbing"),  # no line has it
    ]
    for body, status, field, value in refusals:
        got, answer = await admin.put(f"/api/v1/seats/{other.user.id}/phone", body)
        assert got == status, (body, answer)
        assert answer["error"]["field"] == field, answer
        if value is not None:
            assert answer["error"]["value"] == value and value in answer["error"]["message"], answer
    status, _ = await supervisor.put(f"/api/v1/seats/{other.user.id}/phone", {"interface": "PJSIP/8002"})
    assert status == 403  # supervisors read, admins change
    status, _ = await agent.get("/api/v1/seats/phones")
    assert status == 403

    audit = await phone_system.pool.fetch(
        "SELECT user_id, object_id, detail FROM audit_log WHERE action = 'seat_phone_updated'")
    assert [(a["user_id"], a["object_id"], a["detail"]["interface"]) for a in audit] == [
        (admin.user.id, str(agent.user.id), PHONE)]


# -- seat state → queue membership ------------------------------------------------------
async def test_a_supervisor_forces_a_break_and_a_sign_off_and_asterisk_follows(
        phone_system: PhoneSystem, users: Users) -> None:
    """强制小休 / 强制签出: an agent left the desk 置闲; the supervisor pauses the phone with
    a reason, then signs the seat off; never during a call; audited; agents cannot."""
    admin, supervisor = await users("admin"), await users("supervisor")
    agent, colleague = await users("agent", display_name="王晓燕"), await users("agent")
    await give_phone(admin, agent, PHONE, ["hrss"])
    status, _ = await agent.seat("ready")
    assert status == 200 and (await members(phone_system, PLATFORM)).get(PHONE) == "member"

    status, body = await colleague.put(f"/api/v1/seats/{agent.user.id}/state", {"state": "offline"})
    assert status == 403
    status, body = await supervisor.put(f"/api/v1/seats/{agent.user.id}/state", {"state": "break"})
    assert status == 400 and body["error"]["field"] == "reason"
    status, body = await supervisor.put(f"/api/v1/seats/{agent.user.id}/state", {"state": "break", "reason": "会议"})
    assert status == 200 and body["pbx_updated"] is True and body["seat"]["reason"] == "会议"
    assert (await members(phone_system, PLATFORM)).get(PHONE) == "paused:会议"
    assert (await members(phone_system, HRSS)).get(PHONE) == "paused:会议"
    status, mine = await agent.get("/api/v1/console/seat")
    assert mine["seat"]["state"] == "break" and mine["seat"]["reason"] == "会议"

    status, body = await supervisor.put(f"/api/v1/seats/{agent.user.id}/state", {"state": "offline"})
    assert status == 200 and body["seat"]["state"] == "offline"
    assert PHONE not in await members(phone_system, PLATFORM)
    assert PHONE not in await members(phone_system, HRSS)
    # a supervisor never signs someone on (nor puts a seat that is away on a break), nor
    # changes a seat during a call
    status, body = await supervisor.put(f"/api/v1/seats/{agent.user.id}/state", {"state": "ready"})
    assert status == 400 and body["error"]["field"] == "state" and body["error"]["value"] == "ready"
    status, body = await supervisor.put(f"/api/v1/seats/{agent.user.id}/state", {"state": "break", "reason": "其他"})
    assert status == 409 and body["error"]["code"] == "not_allowed" and "王晓燕" in body["error"]["message"], body
    await phone_system.pool.execute("INSERT INTO seats (user_id, state) VALUES ($1, 'on_call')", colleague.user.id)
    status, body = await supervisor.put(f"/api/v1/seats/{colleague.user.id}/state", {"state": "offline"})
    assert status == 409 and body["error"]["current"] == "on_call"
    status, body = await supervisor.put(f"/api/v1/seats/{admin.user.id}/state", {"state": "offline"})
    assert status == 404 and body["error"]["field"] == "user_id"

    audit = await phone_system.pool.fetch(
        "SELECT user_id, object_id, detail FROM audit_log WHERE action = 'seat.forced' ORDER BY id")
    assert [(a["user_id"], a["object_id"], a["detail"]["from"], a["detail"]["to"], a["detail"]["reason"])
            for a in audit] == [(supervisor.user.id, str(agent.user.id), "ready", "break", "会议"),
                                (supervisor.user.id, str(agent.user.id), "break", "offline", None)]


async def test_ready_break_offline_make_the_phone_a_member_paused_or_absent(
        phone_system: PhoneSystem, users: Users) -> None:
    admin, agent = await users("admin"), await users("agent", display_name="王晓燕")
    await give_phone(admin, agent, PHONE, ["hrss"])
    assert await members(phone_system, PLATFORM) == {}

    status, body = await agent.seat("ready")  # 置闲
    assert status == 200 and body["pbx_updated"] is True
    assert (await members(phone_system, PLATFORM)).get(PHONE) == "member"  # answered only after Asterisk agreed
    assert (await members(phone_system, HRSS)).get(PHONE) == "member"
    assert PHONE not in await members(phone_system, "hotline-12345-transport")
    assert "王晓燕 (Local/8001@agents)" in await phone_system.rx(f"queue show {PLATFORM}")

    status, body = await agent.seat("break", "用餐")  # 小休（用餐）
    assert status == 200 and body["seat"]["reason"] == "用餐"
    assert (await members(phone_system, PLATFORM)).get(PHONE) == "paused:用餐"
    assert (await members(phone_system, HRSS)).get(PHONE) == "paused:用餐"

    status, body = await agent.seat("ready")
    assert (await members(phone_system, PLATFORM)).get(PHONE) == "member"

    status, body = await agent.seat("offline")  # 离线
    assert status == 200 and body["pbx_updated"] is True
    assert PHONE not in await members(phone_system, PLATFORM)
    assert PHONE not in await members(phone_system, HRSS)


async def test_an_expert_joins_the_pool_of_their_line_not_the_12345_queue(
        phone_system: PhoneSystem, users: Users) -> None:
    admin, expert = await users("admin"), await users("expert", hotline_number="12333")
    await give_phone(admin, expert, "Local/8101@agents", ["hrss"])
    status, _ = await expert.seat("ready")
    assert status == 200
    assert (await members(phone_system, "experts-12333")).get("Local/8101@agents") == "member"
    assert "Local/8101@agents" not in await members(phone_system, PLATFORM)
    assert "Local/8101@agents" not in await members(phone_system, HRSS)


async def test_a_new_phone_or_skill_moves_a_ready_seat(phone_system: PhoneSystem, users: Users) -> None:
    admin, agent = await users("admin"), await users("agent")
    await give_phone(admin, agent, PHONE)
    await agent.seat("ready")
    assert PHONE not in await members(phone_system, HRSS)
    await give_phone(admin, agent, PHONE, ["hrss"])  # a skill: into the skill queue at once
    assert (await members(phone_system, HRSS)).get(PHONE) == "member"
    await give_phone(admin, agent, "Local/8002@agents", ["hrss"])  # a new phone: the old one leaves
    for queue in (PLATFORM, HRSS):
        assert await members(phone_system, queue) == {"Local/8002@agents": "member"}


# -- reconcile -----------------------------------------------------------------------------
async def test_members_come_back_after_an_asterisk_restart(phone_system: PhoneSystem, users: Users) -> None:
    admin, agent, resting = await users("admin"), await users("agent"), await users("agent")
    await give_phone(admin, agent, PHONE, ["hrss"])
    await give_phone(admin, resting, "Local/8002@agents")
    await agent.seat("ready")
    await resting.seat("break", "培训")
    service = phone_system.service("telephony")
    before = service.connections

    await asyncio.to_thread(phone_system.pbx.restart)  # persistentmembers = no: Asterisk forgets them

    async def back() -> bool:
        return (service.connections > before
                and await members(phone_system, PLATFORM) == {PHONE: "member", "Local/8002@agents": "paused:培训"}
                and await members(phone_system, HRSS) == {PHONE: "member"})

    await phone_system.eventually(back, what="members restored after the restart")
    status, _ = await agent.seat("break", "会议")  # the new connection serves seat changes too
    assert status == 200 and (await members(phone_system, PLATFORM))[PHONE] == "paused:会议"


async def test_reconcile_removes_members_nobody_wants_and_repairs_pauses(
        settings: Any, pbx_registry: Any, db_url: str, pbx: Any) -> None:
    system = await start_phone_system(settings, pbx_registry, db_url, pbx, calls={"reconcile_interval": 0.3})
    try:
        async with _web(system) as make:
            admin, agent = await make("admin"), await make("agent")
            await give_phone(admin, agent, PHONE)
            await agent.seat("break", "休息")
            await system.rx(f"queue add member Local/9999@agents to {PLATFORM}")  # by hand
            await system.rx(f"queue add member Local/9998@agents to {HRSS}")      # left over
            await system.rx(f"queue unpause member {PHONE} queue {PLATFORM}")     # out of step

            async def agreed() -> bool:
                return (await members(system, PLATFORM) == {PHONE: "paused:休息"}
                        and await members(system, HRSS) == {})

            await system.eventually(agreed, what="the hand-made members removed, the pause restored")
    finally:
        await stop_phone_system(system)


# -- a PBX that refuses or cannot be reached ---------------------------------------------
async def test_an_unreachable_pbx_is_shown_and_the_state_is_not_changed(
        phone_system: PhoneSystem, users: Users) -> None:
    admin, agent = await users("admin"), await users("agent")
    await give_phone(admin, agent, PHONE)
    await agent.seat("ready")
    await asyncio.to_thread(phone_system.pbx.stop)

    status, body = await agent.seat("break", "用餐")
    assert status == 503, body
    assert body["error"]["code"] == "pbx_unreachable"
    assert body["error"]["message"].startswith("电话系统暂时无法连接，座席状态未变更")
    _, now = await agent.get("/api/v1/console/seat")
    assert now["seat"]["state"] == "ready"

    status, body = await agent.seat("offline")  # a person can always leave
    assert status == 200 and body["seat"]["state"] == "offline"
    assert body["pbx_updated"] is False and "电话系统暂时无法连接" in body["note"]

    status, body = await agent.seat("ready")
    assert status == 503 and (await agent.get("/api/v1/console/seat"))[1]["seat"]["state"] == "offline"

    await asyncio.to_thread(phone_system.pbx.start)  # Asterisk back: the reconcile finds nobody signed on
    service = phone_system.service("telephony")
    await phone_system.eventually(lambda: asyncio.sleep(0, service.connected.is_set()), what="AMI reconnected")
    status, _ = await agent.seat("ready")
    assert status == 200 and (await members(phone_system, PLATFORM)).get(PHONE) == "member"


async def test_a_pbx_refusal_is_shown_and_the_state_is_not_changed(
        phone_system: PhoneSystem, users: Users) -> None:
    admin, agent = await users("admin"), await users("agent")
    await give_phone(admin, agent, PHONE, ["hrss"])
    # the PBX loses the hrss skill queue (an operator's stale queues.conf)
    calls = CallSettings.from_settings(phone_system.runtime.settings)
    queues = generate_queues(phone_system.registry, calls).replace(f"[{HRSS}](hotline-defaults)", "")
    (phone_system.pbx.hotline_dir / "queues_hotline.conf").write_text(queues, encoding="utf-8")
    await phone_system.rx("queue reload all")
    assert f"{HRSS} has" not in await phone_system.rx("queue show")

    status, body = await agent.seat("ready")
    assert status == 502, body
    assert body["error"]["code"] == "pbx_refused"
    assert body["error"]["message"].startswith("电话系统拒绝了座席状态变更：")
    assert HRSS in body["error"]["message"] and "No such queue" in body["error"]["message"]
    _, now = await agent.get("/api/v1/console/seat")
    assert now["seat"]["state"] == "offline"


# -- after-call work -------------------------------------------------------------------------
async def test_after_call_work_ends_after_wrapup_seconds(
        settings: Any, pbx_registry: Any, db_url: str, pbx: Any) -> None:
    system = await start_phone_system(settings, pbx_registry, db_url, pbx, calls={"wrapup_seconds": 1})
    try:
        assert "wrapuptime = 1" in (pbx.hotline_dir / "queues_hotline.conf").read_text()
        seen: list[tuple[int, str]] = []
        events = await system.runtime.events()
        events.subscribe("seat.changed", lambda _t, p: seen.append((p["user_id"], p["state"])))
        async with _web(system) as make:
            admin, agent = await make("admin"), await make("agent")
            await give_phone(admin, agent, PHONE)
            await agent.seat("ready")
            await system.call("12345", "13912345678", stay=2)  # answered by Local/8001, citizen hangs up

            states: list[str] = []

            async def after_call_then_ready() -> bool:
                state = await system.pool.fetchval("SELECT state FROM seats WHERE user_id = $1", agent.user.id)
                if not states or states[-1] != state:
                    states.append(state)
                return "after_call" in states and states[-1] == "ready"

            await system.eventually(after_call_then_ready, what="after-call work, then ready")
            assert states[-2:] == ["after_call", "ready"], states
            # published by the telephony service (the console and wallboard follow)
            await system.eventually(lambda: asyncio.sleep(0, seen.count((agent.user.id, "ready")) == 2),
                                    what="seat.changed ready after the wrap-up")
            assert (await members(system, PLATFORM)).get(PHONE) == "member"  # a member all along
    finally:
        await stop_phone_system(system)
