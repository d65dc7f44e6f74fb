"""Console transfers on a real Asterisk 22: the agent clicks 转专家 / 转分中心, the backend
decides and moves the citizen's live channel through AMI (Redirect), the expert's
phone or the sub-centre rings and answers, and the outcome is recorded."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestServer
from phone_support import PhoneSystem, answered_by_agent, signed_in
from support import TEST_PASSWORD

from hotline.auth import create_user


async def test_console_transfer_to_an_expert_moves_the_real_channel(
    phone_system: PhoneSystem, web: TestServer,
) -> None:
    system = phone_system
    expert = await create_user(system.pool, "expert-12333", TEST_PASSWORD, ("expert",), hotline_number="12333")
    await system.pool.execute(
        "INSERT INTO seats (user_id, state, interface) VALUES ($1, 'ready', 'Local/9001@agents')", expert.id)
    await system.rx("dialplan set global TALK_9001 3")
    call, _agent_id = await answered_by_agent(system, "12333", "13700001111")
    client, csrf = await signed_in(web, "agent-8001")
    try:
        resp = await client.post(f"/api/v1/calls/{call['id']}/transfer", json={"kind": "expert"},
                                 headers={"X-CSRF-Token": csrf})
        body = await resp.json()
    finally:
        await client.close()
    assert resp.status == 200, body
    assert body["outcome"] == "connecting" and body["channel_moved"] is True
    assert body["expert_user_id"] == expert.id and body["target"] == "Local/9001@agents"

    # Asterisk really moved the citizen: the expert's phone rang and answered, the agent's leg is gone
    async def expert_answered() -> Any:
        return await system.pool.fetchrow(
            "SELECT * FROM transfer_attempts WHERE call_id = $1 AND outcome = 'answered'", call["id"])

    attempt = await system.eventually(expert_answered, what="the expert answering")
    assert attempt["via"] == "api" and attempt["channel_moved"] is True and attempt["expert_user_id"] == expert.id

    async def ended() -> Any:
        return await system.pool.fetchrow("SELECT * FROM calls WHERE id = $1 AND ended_at IS NOT NULL", call["id"])

    record = await system.eventually(ended, what="the call ending after the expert hung up")
    assert record["state"] == "completed"
    assert await system.pool.fetchval("SELECT count(*) FROM calls") == 1
    steps = [d["step"] for d in record["decisions"]]
    assert "transfer_expert" in steps, record["decisions"]
    hangup = [d for d in record["decisions"] if d["step"] == "hangup"]
    assert hangup[0]["dialstatus"] == "ANSWER", record["decisions"]
    # the citizen was not put back in the queue after the expert's answered call
    assert not [line for line in system.pbx.queue_log.read_text().splitlines()
                if call["call_uid"] in line and "ENTERQUEUE" in line and "experts" in line]
    assert "Local/8001@agents" not in " ".join(await _channels(system))


async def test_console_transfer_to_a_subcentre_moves_the_real_channel(
    phone_system: PhoneSystem, web: TestServer,
) -> None:
    system = phone_system
    call, _agent_id = await answered_by_agent(system, "12345", "13700002222")
    client, csrf = await signed_in(web, "agent-8001")
    try:
        resp = await client.post(f"/api/v1/calls/{call['id']}/transfer",
                                 json={"kind": "subcenter", "target": "12367"}, headers={"X-CSRF-Token": csrf})
        body = await resp.json()
    finally:
        await client.close()
    assert resp.status == 200, body
    assert body["outcome"] == "dialling" and body["channel_moved"] is True
    assert body["target"] == "Local/answer@subcenters"

    async def subcentre_answered() -> Any:
        return await system.pool.fetchrow(
            "SELECT * FROM transfer_attempts WHERE call_id = $1 AND kind = 'subcenter' AND outcome = 'answered'",
            call["id"])

    await system.eventually(subcentre_answered, what="the sub-centre answering")

    async def ended() -> Any:
        return await system.pool.fetchrow("SELECT * FROM calls WHERE id = $1 AND ended_at IS NOT NULL", call["id"])

    record = await system.eventually(ended, what="the call ending")
    assert record["state"] == "completed" and record["hotline_number"] == "12345"
    assert await system.pool.fetchval("SELECT count(*) FROM calls") == 1


async def _channels(system: PhoneSystem) -> list[str]:
    import asyncio

    return await asyncio.to_thread(system.pbx.channels)
