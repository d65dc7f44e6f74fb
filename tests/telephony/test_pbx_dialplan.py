"""The generated dialplan and queues on a real Asterisk 22: loaded without a warning,
and the queue member gosub runs ``agent_connect`` (the screen-pop) on every answer."""

from __future__ import annotations

import asyncio

from phone_support import PhoneSystem
from support import TEST_PASSWORD

from hotline.auth import create_user


async def test_generated_files_reload_without_a_warning(phone_system: PhoneSystem) -> None:
    problems = await asyncio.to_thread(phone_system.pbx.reload)
    assert problems == []
    out = await phone_system.rx("dialplan show hotline-incoming")
    for line in phone_system.registry:
        assert f"'{line.number}' =>" in out
    queues = await phone_system.rx("queue show")
    assert "hotline-12345 has 0 calls" in queues
    assert "experts-12333 has 0 calls" in queues


async def test_a_queued_call_runs_agent_connect_on_the_agents_channel(phone_system: PhoneSystem) -> None:
    agent = await create_user(phone_system.pool, "agent-8001", TEST_PASSWORD, ("agent",))
    await phone_system.pool.execute(
        "INSERT INTO seats (user_id, state, interface) VALUES ($1, 'ready', 'Local/8001@agents')", agent.id)
    await phone_system.rx("queue add member Local/8001@agents to hotline-12345")
    await phone_system.call("12345", "13912345678", stay=3)

    async def answered() -> object:
        return await phone_system.pool.fetchrow(
            "SELECT * FROM calls WHERE agent_id = $1 AND ended_at IS NOT NULL", agent.id)

    call = await phone_system.eventually(answered, what="an answered, ended call")
    assert call["hotline_number"] == "12345" and call["route"] == "platform"
    assert call["answered_by"] == "Local/8001@agents"
    assert call["caller_number"] == "13912345678"
    assert call["linkedid"] and call["linkedid"] != call["call_uid"]  # the Local caller's ;1 side
