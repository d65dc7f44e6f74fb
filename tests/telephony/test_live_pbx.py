"""Live call state from Asterisk's AMI events on a real Asterisk 22: the wallboard's
waiting calls and agents on calls are what Asterisk says, and a call whose AGI hangup
report never arrives still ends."""

from __future__ import annotations

import re
from typing import Any

from phone_support import PhoneSystem, start_phone_system, stop_phone_system
from support import TEST_PASSWORD

from hotline.auth import create_user
from hotline.console.wallboard import snapshot


async def asterisk_waiting(system: PhoneSystem, queue: str) -> int:
    out = await system.rx(f"queue show {queue}")
    found = re.search(r"has (\d+) calls?", out)
    assert found, out
    return int(found.group(1))


async def test_waiting_and_talking_on_the_wallboard_are_what_asterisk_says(phone_system: PhoneSystem) -> None:
    system = phone_system
    queue = system.registry.platform.queue
    for caller in ("13800000001", "13800000002", "13800000003"):
        await system.call("12345", caller, stay=60)

    async def three_waiting() -> Any:
        board = await snapshot(system.pool, system.registry, system.runtime.settings.timezone)
        return board if board["waiting_total"] == 3 else None

    board = await system.eventually(three_waiting, what="three callers waiting on the wallboard")
    assert await asterisk_waiting(system, queue) == 3
    assert board["queues"] == [{"queue": queue, "waiting": 3, "oldest": board["oldest_queued_at"]}]

    # an agent takes one: Asterisk has two waiting, the wallboard too, and one agent on a call
    await agent_in_queue(system, "8001", talk=30)

    async def one_taken() -> Any:
        board = await snapshot(system.pool, system.registry, system.runtime.settings.timezone)
        return board if board["waiting_total"] == 2 and board["agents"]["on_call"] == 1 else None

    await system.eventually(one_taken, what="one call answered on the wallboard")
    assert await asterisk_waiting(system, queue) == 2


async def test_a_call_whose_agi_hangup_never_arrives_still_ends(
    settings: Any, pbx_registry: Any, db_url: str, pbx: Any,
) -> None:
    # no records follower: only the AMI stream can end the call
    system = await start_phone_system(settings, pbx_registry, db_url, pbx, services=("agi", "telephony"))
    try:
        await _ends_without_the_agi(system)
    finally:
        await stop_phone_system(system)


async def agent_in_queue(system: PhoneSystem, extension: str, *, talk: int) -> Any:
    """An agent whose phone (``Local/<extension>@agents``) is a ready member of the 12345
    queue and talks ``talk`` seconds on every call."""
    agent = await create_user(system.pool, f"agent-{extension}", TEST_PASSWORD, ("agent",))
    await system.pool.execute(
        "INSERT INTO seats (user_id, state, interface) VALUES ($1, 'ready', $2)", agent.id,
        f"Local/{extension}@agents")
    await system.rx(f"dialplan set global TALK {talk}")
    await system.rx(f"queue add member Local/{extension}@agents to {system.registry.platform.queue}")
    return agent


async def _ends_without_the_agi(system: PhoneSystem) -> None:
    agent = await agent_in_queue(system, "8001", talk=4)
    await system.call("12345", "13800000009", stay=60)

    async def talking() -> Any:
        return await system.pool.fetchrow("SELECT * FROM calls WHERE state = 'answered'")

    call = await system.eventually(talking, what="the agent answering")
    # the FastAGI node goes away: the hangup handler's AGI cannot report the end
    await system.stop_services(("agi",))

    async def ended() -> Any:
        return await system.pool.fetchrow("SELECT * FROM calls WHERE id = $1 AND ended_at IS NOT NULL", call["id"])

    record = await system.eventually(ended, timeout=40, what="the call ended from the AMI hang-up")
    assert record["state"] == "completed"
    assert record["agent_id"] == agent.id
    assert record["ended_at"] > record["answered_at"]


async def test_answers_and_ends_the_flows_reported_cost_ami_no_database_look(phone_system: PhoneSystem) -> None:
    """AMI's AgentConnect and Hangup repeat what the gosub and the hangup handler told:
    the listener hears the flows' ``call.updated`` events and looks nothing up."""
    system = phone_system
    live = system.service("telephony").live
    live.hangup_grace = live.answer_grace = 0.5
    agent = await agent_in_queue(system, "8002", talk=1)
    await system.call("12345", "13800000011", stay=30)

    async def ended() -> Any:
        return await system.pool.fetchrow("SELECT * FROM calls WHERE ended_at IS NOT NULL")

    record = await system.eventually(ended, what="the call answered and ended")
    assert record["agent_id"] == agent.id and record["answered_at"] is not None

    async def settled() -> Any:
        return live.handled >= 2 or None  # the AgentConnect and the Hangup of the citizen's channel

    await system.eventually(settled, what="AMI's answer and hang-up handled")
    assert live.looked_up == 0
    assert [d.get("source") for d in record["decisions"] if d.get("step") == "answer"] == [None]
    # the session's filter lets through only what the listeners use: no HangupRequest,
    # HangupHandlerPush or HangupHandlerRun (which "Event: Hangup" alone would match)
    received = system.service("telephony").received
    assert {"QueueCallerJoin", "AgentConnect", "Hangup"} <= set(received)
    assert set(received) <= {"QueueCallerJoin", "AgentConnect", "Hangup", "FullyBooted", "SuccessfulAuth"}, received
