"""Supervisor monitoring (监听/耳语/强插) over HTTP, without a PBX: who may ask, what is
refused and how (the field, the value, a Chinese message), what is audited; the
supervisor's seat phone given by the admin. The PBX side runs on a real Asterisk in
tests/telephony/test_monitor_pbx.py."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from hotline.agi.ami import AmiConfig, AmiTestPeer
from hotline.calls.members import PbxUnreachable
from hotline.calls.monitor import MonitorMode, parse_mode, spy_request
from hotline.calls.store import apply_op, make_entry
from hotline.console.monitor import start_monitor
from hotline.errors import ValidationError
from hotline.telephony.pbx import AmiCallControl
from hotline.telephony.sandbox import free_port


async def _on_call(pool: asyncpg.Pool, user_id: int, uid: str, *, interface: str | None = "PJSIP/8001") -> int:
    async with pool.acquire() as conn:
        call_id = await apply_op(conn, make_entry("start", uid, {
            "source": "agi", "hotline_number": "12345", "caller_number": "13912345678", "caller_kind": "mobile",
            "route": "platform", "queue": "hotline-12345", "state": "queued",
            "started_at": "2026-12-01T02:00:00+00:00", "decisions": []}))
    await pool.execute(
        """INSERT INTO seats (user_id, state, interface, current_call_id) VALUES ($1, 'on_call', $2, $3)
           ON CONFLICT (user_id) DO UPDATE SET state = 'on_call', interface = $2, current_call_id = $3""",
        user_id, interface, call_id)
    assert call_id is not None
    return call_id


async def _phone(pool: asyncpg.Pool, user_id: int, interface: str) -> None:
    await pool.execute("INSERT INTO seats (user_id, state, interface) VALUES ($1, 'offline', $2)", user_id, interface)


async def _monitor(who: Any, user_id: int, mode: str) -> tuple[int, dict[str, Any]]:
    """``who`` asks to monitor ``user_id``'s call: the status and the error (or body)."""
    resp = await who.post(f"/api/v1/seats/{user_id}/monitor", json={"mode": mode})
    body = await resp.json()
    return resp.status, body.get("error", body)


async def _hang_up(who: Any, call_id: int, reason: object) -> tuple[int, dict[str, Any]]:
    """``who`` asks to hang ``call_id`` up (强拆): the status and the error (or body)."""
    resp = await who.post(f"/api/v1/calls/{call_id}/hangup", json={"reason": reason} if reason is not None else {})
    body = await resp.json()
    return resp.status, body.get("error", body)


async def _audited(pool: asyncpg.Pool, action: str = "call.monitored") -> list[Any]:
    return await pool.fetch("SELECT * FROM audit_log WHERE action = $1 ORDER BY id", action)


def test_modes_map_to_chanspy_options_and_a_bad_mode_names_the_field() -> None:
    assert [m.chanspy_options for m in MonitorMode] == ["bqES", "bqESw", "bqESB"]
    assert [m.name_zh for m in MonitorMode] == ["监听", "耳语", "强插"]
    request = spy_request(phone="PJSIP/9001", target="PJSIP/800", mode=MonitorMode.WHISPER,
                          agent_name='王"晓<燕>\n', call_id=42, call_uid="1796000000.7")
    # the prefix ends with "-": PJSIP/800 never spies on PJSIP/8001's channels
    assert request.application_data == "PJSIP/800-,bqESw"
    assert request.caller_id == '"耳语 王晓燕" <42>'
    assert request.variables["CDR(userfield)"] == "hotline-leg:1796000000.7"
    with pytest.raises(ValidationError) as err:
        parse_mode("spy")
    assert err.value.field == "mode" and err.value.details["value"] == "spy"


async def test_only_supervisors_monitor_and_every_refusal_says_why(api_as: Any, pool: asyncpg.Pool) -> None:
    agent = await api_as("agent", display_name="王晓燕")
    other_agent = await api_as("agent")
    supervisor = await api_as("supervisor")
    call_id = await _on_call(pool, agent.user.id, "1796000001.1")

    # an agent may not listen to a colleague
    assert (await _monitor(other_agent, agent.user.id, "listen"))[0] == 403

    status, error = await _monitor(supervisor, agent.user.id, "eavesdrop")
    assert status == 400 and error["field"] == "mode" and error["value"] == "eavesdrop"

    # the supervisor has no seat phone yet
    status, error = await _monitor(supervisor, agent.user.id, "listen")
    assert status == 409 and error["code"] == "no_phone" and "管理员" in error["message"]
    await _phone(pool, supervisor.user.id, "PJSIP/9001")

    # an agent who is not on a call
    await _phone(pool, other_agent.user.id, "PJSIP/8002")
    status, error = await _monitor(supervisor, other_agent.user.id, "listen")
    assert status == 409 and error["code"] == "not_on_call" and error["value"] == other_agent.user.id

    # no such agent (a supervisor is not a seat one monitors)
    assert (await _monitor(supervisor, supervisor.user.id, "listen"))[0] == 404
    # a team leader who also takes calls does not monitor their own
    leader = await api_as("supervisor", "agent")
    await _on_call(pool, leader.user.id, "1796000001.2", interface="PJSIP/8009")
    status, error = await _monitor(leader, leader.user.id, "whisper")
    assert status == 400 and error["code"] == "own_call" and error["field"] == "user_id"

    # everything right but no telephone system configured on this node: nothing rings, nothing audited
    status, error = await _monitor(supervisor, agent.user.id, "listen")
    assert status == 503 and error["code"] == "pbx_unavailable" and "电话系统" in error["message"]
    assert await _audited(pool) == []

    # an on-call agent whose seat has no phone cannot be spied on
    await pool.execute("UPDATE seats SET interface = NULL WHERE user_id = $1", agent.user.id)
    status, error = await _monitor(supervisor, agent.user.id, "barge")
    assert status == 409 and error["code"] == "agent_no_phone" and "强插" in error["message"]
    assert call_id > 0


async def test_an_unreachable_pbx_is_told_to_the_supervisor_and_the_attempt_audited(
    api_as: Any, pool: asyncpg.Pool,
) -> None:
    agent = await api_as("agent")
    supervisor = await api_as("supervisor")
    await _phone(pool, supervisor.user.id, "PJSIP/9001")
    call_id = await _on_call(pool, agent.user.id, "1796000003.1")
    closed = AmiCallControl(AmiConfig("127.0.0.1", free_port(), "hotline", "secret", timeout=2.0))  # nobody listens
    with pytest.raises(PbxUnreachable) as err:
        await start_monitor(pool, closed, by=supervisor.user, agent_user_id=agent.user.id, mode="listen")
    assert err.value.status == 503 and "监听未开始" in err.value.message
    (asked,) = await _audited(pool)
    assert asked["object_id"] == str(call_id) and asked["detail"]["phone"] == "PJSIP/9001"
    (row,) = await _audited(pool, "call.monitor_result")
    assert row["object_id"] == str(call_id) and row["detail"]["outcome"] == "failed" and row["detail"]["error"]


async def test_a_pbx_that_never_reports_the_answer_leaves_the_supervisor_told_it_rang(
    api_as: Any, pool: asyncpg.Pool,
) -> None:
    """An AMI user whose eventfilter drops OriginateResponse (a real Asterisk here always
    sends it): the phone rang, whether it was answered is unknown; said so and audited."""
    agent = await api_as("agent", display_name="王晓燕")
    supervisor = await api_as("supervisor")
    await _phone(pool, supervisor.user.id, "PJSIP/9001")
    call_id = await _on_call(pool, agent.user.id, "1796000004.1")
    peer = AmiTestPeer()  # queues the Originate, never says how it ended
    await peer.start()
    try:
        control = AmiCallControl(AmiConfig("127.0.0.1", peer.port, peer.username, peer.secret, timeout=0.5), grace=0.2)
        done = await start_monitor(pool, control, by=supervisor.user, agent_user_id=agent.user.id, mode="whisper",
                                   ring_seconds=0)
    finally:
        await peer.stop()
    assert done.to_json() == {
        "user_id": agent.user.id, "call_id": call_id, "mode": "whisper", "mode_name": "耳语", "phone": "PJSIP/9001",
        "outcome": "unknown", "message": "已呼叫您的座席电话 PJSIP/9001，接听后开始耳语 王晓燕 的通话"}
    (originate,) = [a for a in peer.actions if a.get("Action") == "Originate"]
    assert originate["Channel"] == "PJSIP/9001" and originate["Data"] == "PJSIP/8001-,bqESw"
    assert originate["Async"] == "true" and originate["Timeout"] == "0"
    (row,) = await _audited(pool, "call.monitor_result")
    assert row["detail"]["outcome"] == "unknown" and row["detail"]["mode"] == "whisper"


async def test_the_admin_gives_a_supervisor_a_phone_and_the_console_says_who_has_one(
    api_as: Any, pool: asyncpg.Pool,
) -> None:
    admin = await api_as("admin")
    supervisor = await api_as("supervisor")
    dispatcher = await api_as("dispatcher")
    agent = await api_as("agent")
    resp = await admin.put(f"/api/v1/seats/{supervisor.user.id}/phone", json={"interface": "PJSIP/9001"})
    assert resp.status == 200, await resp.text()
    phones = {p["user_id"]: p for p in (await (await admin.get("/api/v1/seats/phones")).json())["items"]}
    assert phones[supervisor.user.id]["interface"] == "PJSIP/9001"
    assert phones[supervisor.user.id]["queues"] == []  # a supervisor's phone joins no queue
    resp = await admin.put(f"/api/v1/seats/{dispatcher.user.id}/phone", json={"interface": "PJSIP/9002"})
    assert resp.status == 400 and (await resp.json())["error"]["field"] == "user_id"
    await _on_call(pool, agent.user.id, "1796000004.1")
    seats = {s["user_id"]: s for s in (await (await supervisor.get("/api/v1/console/seats")).json())["items"]}
    assert seats[agent.user.id]["has_phone"] is True and seats[agent.user.id]["state"] == "on_call"


async def test_a_supervisors_hang_up_refusals_and_an_unreachable_pbx(api_as: Any, pool: asyncpg.Pool) -> None:
    """强拆 without a PBX to do it: who may ask, what is refused and how; an unreachable
    PBX is told and audited, and the call's record says nothing happened."""
    from hotline.console.monitor import hang_up_call

    agent = await api_as("agent")
    supervisor = await api_as("supervisor")
    call_id = await _on_call(pool, agent.user.id, "1796000005.1")
    assert (await _hang_up(agent, call_id, "骚扰电话"))[0] == 403
    status, error = await _hang_up(supervisor, call_id, None)
    assert status == 400 and error["field"] == "reason", error
    status, error = await _hang_up(supervisor, call_id, "骚" * 201)
    assert status == 400 and error["code"] == "too_long", error
    # no channel on record (the test's call never had one)
    status, error = await _hang_up(supervisor, call_id, "骚扰电话")
    assert status == 409 and error["code"] == "no_channel", error
    await pool.execute("UPDATE calls SET channel = 'PJSIP/trunk-00000001' WHERE id = $1", call_id)
    status, error = await _hang_up(supervisor, call_id, "骚扰电话")
    assert status == 503 and error["code"] == "pbx_unavailable", error
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'call.hung_up_by_supervisor'") == 0

    closed = AmiCallControl(AmiConfig("127.0.0.1", free_port(), "hotline", "secret", timeout=2.0))
    with pytest.raises(PbxUnreachable):
        await hang_up_call(pool, closed, by=supervisor.user, call_id=call_id, reason="骚扰电话")
    detail = await pool.fetchval("SELECT detail FROM audit_log WHERE action = 'call.hung_up_by_supervisor'")
    assert detail["outcome"] == "failed" and detail["reason"] == "骚扰电话"
    decisions = await pool.fetchval("SELECT decisions FROM calls WHERE id = $1", call_id)
    assert not [d for d in decisions if d["step"] == "supervisor_hangup"]

    await pool.execute("UPDATE calls SET state = 'completed', ended_at = now() WHERE id = $1", call_id)
    status, error = await _hang_up(supervisor, call_id, "骚扰电话")
    assert status == 409 and error["code"] == "not_live", error
    assert (await _hang_up(supervisor, 999999, "骚扰电话"))[0] == 404
