"""Supervisor monitoring on a real Asterisk 22: the supervisor clicks 监听 / 强插, the
backend rings the supervisor's seat phone (AMI Originate) into ChanSpy on the agent's
phone channel; Asterisk reports the spy on that very channel, the spy leg ends with the
call and is filed under the call by the record import (a leg, never a call of its
own), and every request is audited."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from phone_support import PhoneSystem, answered_by_agent, signed_in
from support import TEST_PASSWORD

from hotline.agi.ami import AmiConnection
from hotline.auth import create_user
from hotline.calls.settings import CallSettings
from hotline.console.monitor import start_monitor
from hotline.errors import Conflict
from hotline.telephony.pbx import ami_config, call_control

SUPERVISOR_PHONE = "Local/8901@agents"


async def _spy_channels(system: PhoneSystem) -> list[list[str]]:
    """``core show channels concise`` rows of channels running ChanSpy: name!context!exten!
    priority!state!application!data!..."""
    out = await system.rx("core show channels concise")
    return [row.split("!") for row in out.splitlines() if "!ChanSpy!" in row]


async def test_a_supervisor_listens_then_barges_in_on_the_agents_real_channel(
    phone_system: PhoneSystem, web: TestServer,
) -> None:
    system = phone_system
    config = ami_config(CallSettings.from_settings(system.runtime.settings))
    assert config is not None
    started: list[dict[str, str]] = []
    watcher = AmiConnection(config, events=["ChanSpyStart"], on_event=started.append)
    await watcher.connect()
    admin = await create_user(system.pool, "admin-1", TEST_PASSWORD, ("admin",))
    supervisor = await create_user(system.pool, "super-1", TEST_PASSWORD, ("supervisor",), display_name="赵班长")
    assert admin.id != supervisor.id
    await system.rx("dialplan set global TALK_8901 60")  # the supervisor's phone answers and stays
    call, agent_id = await answered_by_agent(system, "12345", "13700003333", talk=60)
    try:
        # the admin gives the supervisor a seat phone, through the API as in the admin page
        client, csrf = await signed_in(web, "admin-1")
        try:
            resp = await client.put(f"/api/v1/seats/{supervisor.id}/phone", json={"interface": SUPERVISOR_PHONE},
                                    headers={"X-CSRF-Token": csrf})
            assert resp.status == 200, await resp.text()
        finally:
            await client.close()

        client, csrf = await signed_in(web, "super-1")
        try:
            resp = await client.post(f"/api/v1/seats/{agent_id}/monitor", json={"mode": "listen"},
                                     headers={"X-CSRF-Token": csrf})
            body = await resp.json()
            assert resp.status == 200, body
            # the answer comes once the supervisor's phone picked up (Asterisk's OriginateResponse)
            assert body == {"user_id": agent_id, "call_id": call["id"], "mode": "listen", "mode_name": "监听",
                            "phone": SUPERVISOR_PHONE, "outcome": "answered",
                            "message": f"已接通：您正在监听 agent-8001 的通话（座席电话 {SUPERVISOR_PHONE}）"}

            # the supervisor's phone answered and ChanSpy runs on it, spying on the agent's bridged channel
            spy = await system.eventually(lambda: _spied("Local/8001@agents-", started), what="ChanSpyStart")
            assert spy["SpyerChannel"].startswith(SUPERVISOR_PHONE + "-")
            rows = await _spy_channels(system)
            assert [r[6] for r in rows] == ["Local/8001@agents-,bqES"], rows

            resp = await client.post(f"/api/v1/seats/{agent_id}/monitor", json={"mode": "barge"},
                                     headers={"X-CSRF-Token": csrf})
            assert resp.status == 200, await resp.text()

            async def barging() -> Any:
                return [r for r in await _spy_channels(system) if r[6] == "Local/8001@agents-,bqESB"]

            await system.eventually(barging, what="the barge-in spy")
        finally:
            await client.close()

        audited = await system.pool.fetch(
            "SELECT * FROM audit_log WHERE action = 'call.monitored' ORDER BY id")
        assert [(a["user_id"], a["object_type"], a["object_id"], a["detail"]["mode"]) for a in audited] == [
            (supervisor.id, "call", str(call["id"]), "listen"), (supervisor.id, "call", str(call["id"]), "barge")]
        assert audited[0]["detail"] == {"agent_user_id": agent_id, "agent": "agent-8001", "mode": "listen",
                                        "phone": SUPERVISOR_PHONE, "spied_interface": "Local/8001@agents",
                                        "ring_seconds": 30}
        results = await system.pool.fetch(
            "SELECT * FROM audit_log WHERE action = 'call.monitor_result' ORDER BY id")
        assert [(a["object_id"], a["detail"]["mode"], a["detail"]["outcome"]) for a in results] == [
            (str(call["id"]), "listen", "answered"), (str(call["id"]), "barge", "answered")]

        # the citizen hangs up: the spies end with the call (E), nothing is left spying
        await system.rx(f"channel request hangup {call['channel']}")

        async def no_spies() -> bool:
            return not await _spy_channels(system)

        await system.eventually(no_spies, what="the spy legs ending with the call")

        async def recorded() -> Any:
            return await system.pool.fetchrow(
                "SELECT * FROM calls WHERE id = $1 AND ended_at IS NOT NULL", call["id"])

        assert (await system.eventually(recorded, what="the call ending"))["agent_id"] == agent_id
        # the spy legs (both halves of the supervisor's Local phone, twice) are legs of the
        # spied call in the record import, never calls of their own
        assert "hotline-leg:" + call["call_uid"] in system.pbx.cdr_csv.read_text(encoding="utf-8")

        async def spy_legs_filed() -> list[Any]:
            rows = await system.pool.fetch(
                "SELECT call_id FROM cdr_records WHERE channel LIKE 'Local/8901@agents-%'")
            return rows if len(rows) == 4 and all(r["call_id"] is not None for r in rows) else []

        legs = await system.eventually(spy_legs_filed, what="the spy legs imported and filed")
        assert {r["call_id"] for r in legs} == {call["id"]}
        assert await system.pool.fetchval("SELECT count(*) FROM calls") == 1
        assert await system.pool.fetchval("SELECT count(*) FROM cdr_records WHERE call_id IS NULL") == 0
    finally:
        await watcher.close()


async def test_a_supervisor_phone_that_is_busy_or_rings_out_is_told_and_nobody_spies(
    phone_system: PhoneSystem,
) -> None:
    """The supervisor's phone is busy (on another call) or not picked up: Asterisk's
    OriginateResponse says so, the supervisor is told which, nothing spies on the call,
    and both attempts are audited with their outcome."""
    system = phone_system
    supervisor = await create_user(system.pool, "super-3", TEST_PASSWORD, ("supervisor",))
    call, agent_id = await answered_by_agent(system, "12345", "13700005555", talk=60)
    control = call_control(system.runtime)
    assert control is not None
    tried = []
    for phone, code, outcome in (("Local/busy@subcenters", "phone_busy", "busy"),
                                 ("Local/ringout@subcenters", "phone_no_answer", "no_answer")):
        await system.pool.execute(
            """INSERT INTO seats (user_id, state, interface) VALUES ($1, 'offline', $2)
               ON CONFLICT (user_id) DO UPDATE SET interface = $2""", supervisor.id, phone)
        with pytest.raises(Conflict) as err:
            await start_monitor(system.pool, control, by=supervisor, agent_user_id=agent_id, mode="listen",
                                ring_seconds=2)
        assert (err.value.code, err.value.details["value"]) == (code, phone), err.value.message
        assert phone in err.value.message and err.value.message.endswith("，监听未开始")
        tried.append((str(call["id"]), phone, outcome))
        assert not await _spy_channels(system)
    results = await system.pool.fetch(
        "SELECT object_id, detail FROM audit_log WHERE action = 'call.monitor_result' ORDER BY id")
    assert [(a["object_id"], a["detail"]["phone"], a["detail"]["outcome"]) for a in results] == tried
    # the citizen's call goes on, with its agent
    assert (await system.pool.fetchrow("SELECT state, agent_id FROM calls WHERE id = $1", call["id"])) == (
        "answered", agent_id)


async def _spied(prefix: str, started: list[dict[str, str]]) -> dict[str, str] | None:
    return next((e for e in started if e.get("SpyeeChannel", "").startswith(prefix)), None)


async def test_a_supervisor_hangs_up_an_abusive_call_and_the_record_says_who_and_why(
    phone_system: PhoneSystem, web: TestServer,
) -> None:
    """强拆 on the real Asterisk: the citizen's channel is hung up through AMI, the agent's
    leg goes with it, the call ends through the usual flows with its record noting who
    ended it and why; an ended call cannot be hung up again."""
    system = phone_system
    supervisor = await create_user(system.pool, "super-2", TEST_PASSWORD, ("supervisor",))
    call, agent_id = await answered_by_agent(system, "12345", "13700004444", talk=60)
    assert call["channel"]
    client, csrf = await signed_in(web, "super-2")
    try:
        resp = await client.post(f"/api/v1/calls/{call['id']}/hangup", json={"reason": "  "},
                                 headers={"X-CSRF-Token": csrf})
        body = await resp.json()
        assert resp.status == 400 and body["error"]["field"] == "reason", body
        resp = await client.post(f"/api/v1/calls/{call['id']}/hangup", json={"reason": "骚扰电话"},
                                 headers={"X-CSRF-Token": csrf})
        body = await resp.json()
        assert resp.status == 200 and body["outcome"] == "hung_up", body

        async def ended() -> Any:
            return await system.pool.fetchrow(
                "SELECT * FROM calls WHERE id = $1 AND ended_at IS NOT NULL", call["id"])

        record = await system.eventually(ended, what="the call ending after the hang-up")
        assert record["agent_id"] == agent_id and record["state"] == "completed"
        steps = [d for d in record["decisions"] if d["step"] == "supervisor_hangup"]
        assert steps == [{"step": "supervisor_hangup", "by": supervisor.id, "reason": "骚扰电话"}]
        channels = " ".join(await asyncio.to_thread(system.pbx.channels))
        assert call["channel"] not in channels and "Local/8001@agents" not in channels

        resp = await client.post(f"/api/v1/calls/{call['id']}/hangup", json={"reason": "骚扰电话"},
                                 headers={"X-CSRF-Token": csrf})
        body = await resp.json()
        assert resp.status == 409 and body["error"]["code"] == "not_live", body
    finally:
        await client.close()
    audited = await system.pool.fetch(
        "SELECT user_id, object_id, detail FROM audit_log WHERE action = 'call.hung_up_by_supervisor'")
    assert [(a["user_id"], a["object_id"], a["detail"]["reason"], a["detail"]["outcome"]) for a in audited] == [
        (supervisor.id, str(call["id"]), "骚扰电话", "hung_up")]
    assert await system.pool.fetchval("SELECT count(*) FROM calls") == 1
