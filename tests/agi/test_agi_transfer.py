"""Expert-seat and sub-centre transfers: from the dialplan (AGI) and from the
console (HTTP + AMI), with and without a free expert."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import wait_for, web_server

from hotline.agi.ami import AmiTestPeer
from hotline.agi.live_transfer import ami_mover
from hotline.agi.peer import run_call, simulate_call
from hotline.auth import create_user
from hotline.calls.transfer import transfer_expert
from hotline.runtime import Runtime

PASSWORD = "correct-horse-battery"


async def _expert(pool: asyncpg.Pool, name: str, line: str, interface: str | None, state: str = "ready") -> int:
    user = await create_user(pool, name, PASSWORD, ["expert"], hotline_number=line)
    await pool.execute("INSERT INTO seats (user_id, state, interface) VALUES ($1, $2, $3)", user.id, state, interface)
    return user.id


async def _answered_call(agi, pool: asyncpg.Pool, line: str, caller: str = "13812345678") -> asyncpg.Record:
    agent = await create_user(pool, f"agent-{line}-{caller[-4:]}", PASSWORD, ["agent"])
    interface = f"PJSIP/{agent.id + 7000}"
    await pool.execute("INSERT INTO seats (user_id, state, interface) VALUES ($1, 'ready', $2)", agent.id, interface)
    call = await simulate_call(agi.host, agi.port, dialled=line, caller=caller, answer_interface=interface,
                               hangup=False)
    return await agi.call_row(pool, call.uid)


async def test_expert_transfer_with_a_free_expert(agi, pool: asyncpg.Pool, runtime: Runtime) -> None:
    expert = await _expert(pool, "expert-tax", "12315", "PJSIP/9001")
    call = await _answered_call(agi, pool, "12315")
    events: list[tuple[str, dict]] = []
    listener = await runtime.events()
    listener.subscribe("*", lambda topic, payload: events.append((topic, payload)))

    t = await run_call(agi.host, agi.port, "transfer_expert", {"agi_uniqueid": call["call_uid"]})
    assert t.var("HOTLINE_XFER_OUTCOME") == "connecting"
    assert t.var("HOTLINE_XFER_TARGET") == "PJSIP/9001"
    attempt = int(t.var("HOTLINE_XFER_ATTEMPT"))
    seat = await pool.fetchrow("SELECT state, current_call_id FROM seats WHERE user_id = $1", expert)
    assert (seat["state"], seat["current_call_id"]) == ("on_call", call["id"])
    # the transferring agent's seat is released
    assert await pool.fetchval("SELECT state FROM seats WHERE user_id = $1", call["agent_id"]) == "after_call"
    # the expert answers; the Dial() result is reported
    await run_call(agi.host, agi.port, "dial_result", {"agi_uniqueid": call["call_uid"]},
                   args=[str(attempt), "ANSWER", call["call_uid"]])
    row = await pool.fetchrow("SELECT outcome, finished_at, expert_user_id FROM transfer_attempts WHERE id = $1", attempt)
    assert row["outcome"] == "answered" and row["finished_at"] is not None and row["expert_user_id"] == expert
    await wait_for(lambda: any(t == "transfer.expert" and p["outcome"] == "answered" for t, p in events),
                   what="the answered transfer event")
    xfer = [p for t, p in events if t == "transfer.expert"]
    assert xfer[0] == {"call_id": call["id"], "expert_user_id": expert, "ticket_id": None, "outcome": "connecting"}
    assert ("call.offered", {"call_id": call["id"], "user_id": expert, "hotline_number": "12315"}) in events


async def test_expert_no_answer_frees_the_seat_and_queues(agi, pool: asyncpg.Pool) -> None:
    expert = await _expert(pool, "expert-slow", "12333", "PJSIP/9002")
    call = await _answered_call(agi, pool, "12333")
    t = await run_call(agi.host, agi.port, "transfer_expert", {"agi_uniqueid": call["call_uid"]})
    d = await run_call(agi.host, agi.port, "dial_result", {"agi_uniqueid": call["call_uid"]},
                       args=[t.var("HOTLINE_XFER_ATTEMPT"), "NOANSWER", call["call_uid"]])
    assert d.var("HOTLINE_QUEUE") == "hotline-12345"
    assert await pool.fetchval("SELECT state FROM seats WHERE user_id = $1", expert) == "ready"
    assert (await agi.call_row(pool, call["call_uid"]))["state"] == "queued"


async def test_expert_transfer_without_a_free_expert_queues_or_calls_back(agi, pool: asyncpg.Pool) -> None:
    await _expert(pool, "expert-busy", "12315", "PJSIP/9003", state="on_call")
    await _expert(pool, "expert-other-line", "12333", "PJSIP/9004")  # free, but not this line's
    call = await _answered_call(agi, pool, "12315", caller="13812340001")
    t = await run_call(agi.host, agi.port, "transfer_expert", {"agi_uniqueid": call["call_uid"]})
    assert t.var("HOTLINE_XFER_OUTCOME") == "queued"
    assert t.var("HOTLINE_XFER_QUEUE") == "experts-12315"

    # with the callback fallback: a callback ticket from the tickets module, linked to the call
    agi.ctx.calls = dataclasses.replace(agi.ctx.calls, expert_fallback="callback")
    call2 = await _answered_call(agi, pool, "12315", caller="13812340002")
    t = await run_call(agi.host, agi.port, "transfer_expert", {"agi_uniqueid": call2["call_uid"]})
    assert t.var("HOTLINE_XFER_OUTCOME") == "callback_ticket"
    ticket = int(t.var("HOTLINE_TICKET_ID"))
    assert t.var("HOTLINE_XFER_SOUND") == "hotline/expert-callback"
    tk = await pool.fetchrow("SELECT state, callback_call_id, caller_number, hotline_number FROM tickets WHERE id = $1", ticket)
    assert (tk["callback_call_id"], tk["caller_number"], tk["hotline_number"]) == (call2["id"], "13812340002", "12315")
    assert (await agi.call_row(pool, call2["call_uid"]))["ticket_id"] == ticket
    attempts = await pool.fetch("SELECT outcome, reason FROM transfer_attempts ORDER BY id")
    assert [a["outcome"] for a in attempts] == ["queued", "callback_ticket"]


async def test_two_concurrent_transfers_never_share_an_expert(agi, pool: asyncpg.Pool) -> None:
    experts = {await _expert(pool, f"expert-c{i}", "12328", f"PJSIP/95{i:02d}") for i in range(3)}
    calls = [await _answered_call(agi, pool, "12328", caller=f"1381234{i:04d}") for i in range(5)]
    results = await asyncio.gather(*(transfer_expert(agi.ctx, call_id=c["id"]) for c in calls))
    chosen = [r.expert_user_id for r in results if r.outcome == "connecting"]
    assert sorted(chosen) == sorted(experts)  # each free expert exactly once
    assert sorted(r.outcome for r in results) == ["connecting"] * 3 + ["queued"] * 2
    assert await pool.fetchval("SELECT count(*) FROM transfer_attempts") == 5


async def test_subcenter_transfer_and_no_answer_fallback(agi, pool: asyncpg.Pool) -> None:
    call = await _answered_call(agi, pool, "12345")
    t = await run_call(agi.host, agi.port, "transfer_subcenter?target=12360", {"agi_uniqueid": call["call_uid"]})
    assert t.var("HOTLINE_XFER_OUTCOME") == "dialling"
    assert t.var("HOTLINE_XFER_TARGET") == "PJSIP/12360@subcenter-customs"
    assert t.var("HOTLINE_XFER_TIMEOUT") == "20"
    await run_call(agi.host, agi.port, "dial_result", {"agi_uniqueid": call["call_uid"]},
                   args=[t.var("HOTLINE_XFER_ATTEMPT"), "CHANUNAVAIL", call["call_uid"]])
    attempt = await pool.fetchrow("SELECT kind, outcome, hotline_number FROM transfer_attempts")
    assert dict(attempt) == {"kind": "subcenter", "outcome": "unreachable", "hotline_number": "12360"}
    row = await agi.call_row(pool, call["call_uid"])
    assert row["state"] == "queued" and row["queue"] == "hotline-12345"
    # a line that is not a sub-centre is refused, and the refusal recorded
    t = await run_call(agi.host, agi.port, "transfer_subcenter?target=12315", {"agi_uniqueid": call["call_uid"]})
    assert t.var("HOTLINE_XFER_OUTCOME") == "failed"


# -- the console's transfer buttons: HTTP + AMI ----------------------------------------

@pytest.fixture
async def ami() -> AsyncIterator[AmiTestPeer]:
    peer = AmiTestPeer()
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@pytest.fixture
async def console(runtime: Runtime, ami: AmiTestPeer) -> AsyncIterator[TestServer]:
    extra = dict(runtime.settings.extra)
    extra["calls"] = {"ami_host": "127.0.0.1", "ami_port": ami.port, "ami_username": ami.username,
                      "ami_secret": ami.secret}
    rt = Runtime(dataclasses.replace(runtime.settings, extra=extra), runtime.registry, runtime.db,
                 channel_mover=ami_mover)
    async with web_server(rt) as server:
        yield server


async def _sign_in(server: TestServer, pool: asyncpg.Pool, *roles: str, name: str) -> tuple[TestClient, str, int]:
    user = await create_user(pool, name, PASSWORD, roles)
    client = TestClient(server)
    await client.start_server()
    resp = await client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert resp.status == 200
    return client, (await resp.json())["csrf_token"], user.id


async def test_console_transfer_moves_the_channel_through_ami(agi, pool: asyncpg.Pool, console, ami) -> None:
    expert = await _expert(pool, "expert-ami", "12315", "PJSIP/9100")
    call = await _answered_call(agi, pool, "12315")
    ami.channels.add(call["channel"])
    # a supervisor: the calls below are answered by other agents, and only those on a call or a
    # supervisor may transfer it
    client, csrf, user_id = await _sign_in(console, pool, "supervisor", name="boss-console")
    try:
        resp = await client.post(f"/api/v1/calls/{call['id']}/transfer", json={"kind": "expert"},
                                 headers={"X-CSRF-Token": csrf})
        body = await resp.json()
        assert resp.status == 200, body
        assert body["outcome"] == "connecting" and body["expert_user_id"] == expert
        assert body["channel_moved"] is True
        sent = [a for a in ami.actions if a["Action"] in ("Setvar", "Redirect")]
        assert {a["Variable"]: a["Value"] for a in sent if a["Action"] == "Setvar"}["HOTLINE_XFER_TARGET"] == "PJSIP/9100"
        redirect = sent[-1]
        assert (redirect["Action"], redirect["Channel"], redirect["Context"], redirect["Exten"]) == \
            ("Redirect", call["channel"], "hotline-transfer", "decided")
        attempt = await pool.fetchrow("SELECT via, requested_by, channel_moved FROM transfer_attempts")
        assert dict(attempt) == {"via": "api", "requested_by": user_id, "channel_moved": True}

        # the PBX refuses (channel gone): the expert's seat is given back, the attempt failed
        expert2 = await _expert(pool, "expert-ami-2", "12315", "PJSIP/9101")
        call2 = await _answered_call(agi, pool, "12315", caller="13900000000")
        resp = await client.post(f"/api/v1/calls/{call2['id']}/transfer", json={"kind": "expert"},
                                 headers={"X-CSRF-Token": csrf})
        body = await resp.json()
        assert body["outcome"] == "failed" and body["channel_moved"] is False
        assert body["reason"].startswith("电话系统未能移动通话：") and "does not exist" in body["reason"]
        assert await pool.fetchval("SELECT state FROM seats WHERE user_id = $1", expert2) == "ready"

        # bad input and a finished call
        resp = await client.post(f"/api/v1/calls/{call['id']}/transfer", json={"kind": "pizza"},
                                 headers={"X-CSRF-Token": csrf})
        error = (await resp.json())["error"]
        assert resp.status == 400 and error["field"] == "kind" and "pizza" in error["message"], error
        await pool.execute("UPDATE calls SET state = 'completed' WHERE id = $1", call2["id"])
        resp = await client.post(f"/api/v1/calls/{call2['id']}/transfer", json={"kind": "subcenter",
                                 "target": "12366"}, headers={"X-CSRF-Token": csrf})
        error = (await resp.json())["error"]
        assert resp.status == 409 and error["code"] == "call_not_live" and "已结束" in error["message"]
    finally:
        await client.close()


async def test_call_detail_masks_and_audits_unmasked_views(agi, pool: asyncpg.Pool, api_as) -> None:
    call = await _answered_call(agi, pool, "12349", caller="13812345678")
    agent = await api_as("agent")
    resp = await agent.get(f"/api/v1/calls/{call['id']}")
    body = await resp.json()
    assert resp.status == 200 and body["caller_number"] == "138****5678" and body["caller_masked"]
    assert body["decisions"][0]["step"] == "line" and body["transfer_attempts"] == []
    resp = await agent.get(f"/api/v1/calls/{call['id']}?unmask=1")
    assert resp.status == 403  # not this agent's call
    boss = await api_as("supervisor")
    resp = await boss.get(f"/api/v1/calls/{call['id']}?unmask=1")
    assert (await resp.json())["caller_number"] == "13812345678"
    audited = await pool.fetchrow("SELECT action, object_id FROM audit_log WHERE action = 'call.view_unmasked'")
    assert audited["object_id"] == str(call["id"])
    resp = await agent.get("/api/v1/calls?hotline_number=12349&caller=138****5678")
    listing = await resp.json()
    assert listing["total"] == 1 and listing["items"][0]["caller_number"] == "138****5678"
    resp = await agent.get("/api/v1/calls?state=bogus")
    assert resp.status == 400
    liaison = await api_as("liaison", unit_code="tax")
    assert (await liaison.get("/api/v1/calls")).status == 403
