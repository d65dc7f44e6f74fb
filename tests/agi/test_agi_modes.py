"""The incoming flow for each merge mode, over a real FastAGI socket and PostgreSQL."""

from __future__ import annotations

import asyncpg
from support import wait_for

from hotline.agi.peer import run_call, simulate_call


async def test_merged_line_announces_then_12345_queue_tagged_with_line(agi, pool: asyncpg.Pool) -> None:
    t = await run_call(agi.host, agi.port, "incoming?line=12349",
                       {"agi_callerid": "+8613812345678", "agi_uniqueid": "m-1", "agi_dnid": "12349"})
    assert t.outcome == "closed"
    assert t.var("HOTLINE_ROUTE") == "merged"
    assert t.var("HOTLINE_QUEUE") == "hotline-12345"
    assert t.var("HOTLINE_ANNOUNCEMENT") == "hotline/merged-12349"
    row = await agi.call_row(pool, "m-1")
    assert row["route"] == "merged" and row["hotline_number"] == "12349"
    assert row["caller_number"] == "13812345678" and row["caller_kind"] == "mobile"
    assert row["state"] == "queued"
    assert t.var("HOTLINE_CALL_ID") == str(row["id"])
    steps = [d["step"] for d in row["decisions"]]
    assert steps[0] == "line" and "route" in steps


async def test_dual_line_greeting_skill_queue(agi, pool: asyncpg.Pool) -> None:
    t = await run_call(agi.host, agi.port, "/incoming",
                       {"agi_callerid": "05802012345", "agi_uniqueid": "d-1", "agi_dnid": "12333"})
    assert t.var("HOTLINE_ROUTE") == "dual"
    assert t.var("HOTLINE_SKILL_QUEUE") == "hotline-12345-hrss"
    assert t.var("HOTLINE_ANNOUNCEMENT") == "hotline/greeting-12333"
    row = await agi.call_row(pool, "d-1")
    assert row["route"] == "dual" and row["skill"] == "hrss"
    assert row["caller_number"] == "05802012345" and row["caller_kind"] == "landline"


async def test_subcenter_dials_with_timeout_and_records(agi, pool: asyncpg.Pool) -> None:
    t = await run_call(agi.host, agi.port, "incoming", {"agi_callerid": "2012345", "agi_uniqueid": "s-1"},
                       args=["12366"])
    assert t.var("HOTLINE_ROUTE") == "subcenter"
    assert t.var("HOTLINE_DIAL_TARGET") == "PJSIP/12366@subcenter-tax"
    assert t.var("HOTLINE_DIAL_TIMEOUT") == "20"
    row = await agi.call_row(pool, "s-1")
    assert row["route"] == "subcenter" and row["dial_target"] == "PJSIP/12366@subcenter-tax"
    assert row["caller_number"] == "05802012345"  # local number gets the 0580 area code
    assert row["state"] == "ringing"


async def test_subcenter_no_answer_falls_back_to_12345_queue(agi, pool: asyncpg.Pool) -> None:
    call = await simulate_call(agi.host, agi.port, dialled="12366", caller="13900001111",
                               dialstatus="NOANSWER", answer_interface="PJSIP/8001")
    assert call.route == "subcenter"
    result = call.transcripts[1]
    assert result.var("HOTLINE_QUEUE") == "hotline-12345"
    row = await agi.call_row(pool, call.uid)
    dial = [d for d in row["decisions"] if d["step"] == "dial_result"]
    assert dial and dial[0]["outcome"] == "no_answer" and "hotline-12345" in dial[0]["action"]
    assert row["queue"] == "hotline-12345"
    # then a 12345 agent answered it and the caller hung up: answered, not abandoned
    assert row["state"] == "completed" and row["answered_by"] == "PJSIP/8001"
    assert row["disposition"] == "answered"


async def test_subcenter_answered_records_who_and_talk_time(agi, pool: asyncpg.Pool) -> None:
    call = await simulate_call(agi.host, agi.port, dialled="12367", caller="13900002222",
                               dialstatus="ANSWER", talk_seconds=0)
    row = await agi.call_row(pool, call.uid)
    assert row["state"] == "completed"
    assert row["answered_by"] == "PJSIP/12367@subcenter-immigration"


async def test_platform_number_and_area_code_prefix(agi, pool: asyncpg.Pool) -> None:
    t = await run_call(agi.host, agi.port, "incoming",
                       {"agi_callerid": "anonymous", "agi_uniqueid": "p-1", "agi_dnid": "0580-12345"})
    assert t.var("HOTLINE_ROUTE") == "platform"
    row = await agi.call_row(pool, "p-1")
    assert row["hotline_number"] == "12345" and row["caller_kind"] == "anonymous"
    assert row["decisions"][0]["outcome"] == "matched"


async def test_unknown_dialled_number_goes_to_12345_and_says_why(agi, pool: asyncpg.Pool) -> None:
    t = await run_call(agi.host, agi.port, "incoming",
                       {"agi_callerid": "13812345678", "agi_uniqueid": "u-1", "agi_dnid": "99999",
                        "agi_extension": "99999"})
    assert t.var("HOTLINE_ROUTE") == "fallback"
    assert t.var("HOTLINE_QUEUE") == "hotline-12345"
    row = await agi.call_row(pool, "u-1")
    assert row["hotline_number"] == "12345" and row["route"] == "fallback"
    assert row["dialled"] == "99999"
    assert row["decisions"][0] == {"step": "line", "outcome": "unknown_number", "dialled": "99999",
                                   "source": "agi_dnid", "line": "12345"}


async def test_full_call_answered_by_agent_publishes_offer_and_finalises(agi, pool: asyncpg.Pool, runtime) -> None:
    from hotline.auth import create_user

    agent = await create_user(pool, "agent-8001", "correct-horse-battery", ["agent"])
    await pool.execute("INSERT INTO seats (user_id, state, interface) VALUES ($1, 'ready', 'PJSIP/8001')", agent.id)
    listener = await runtime.events()
    offered: list[dict] = []
    listener.subscribe("call.offered", lambda topic, payload: offered.append(payload))
    call = await simulate_call(agi.host, agi.port, dialled="12315", caller="13812345678",
                               answer_interface="PJSIP/8001")
    row = await agi.call_row(pool, call.uid)
    assert row["agent_id"] == agent.id and row["state"] == "completed"
    assert row["wait_seconds"] is not None and row["talk_seconds"] is not None
    seat = await pool.fetchrow("SELECT state, current_call_id FROM seats WHERE user_id = $1", agent.id)
    assert seat["state"] == "after_call" and seat["current_call_id"] is None
    await wait_for(lambda: offered, what="the call.offered event")
    assert offered == [{"call_id": row["id"], "user_id": agent.id, "hotline_number": "12315"}]


async def test_unanswered_call_is_abandoned(agi, pool: asyncpg.Pool) -> None:
    call = await simulate_call(agi.host, agi.port, dialled="12349", caller="13812345678")
    row = await agi.call_row(pool, call.uid)
    assert row["state"] == "abandoned" and row["disposition"] == "abandoned"
    assert row["ended_at"] is not None and row["talk_seconds"] is None
    assert row["decisions"][-1]["step"] == "hangup" and row["decisions"][-1]["cause"] == "16"
