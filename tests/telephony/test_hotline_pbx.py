"""Day one of the merged hotline on a real Asterisk 22: a citizen call on each of the
33 numbers, routed by its mode, answered, popped on the answering agent's console and
recorded exactly once on the dialled line; the supervisor's figures equal Asterisk's
queue_log."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

from phone_support import SUBCENTRES, PhoneSystem, start_phone_system, stop_phone_system
from support import TEST_PASSWORD

from hotline.auth import create_user
from hotline.calls.routing import skill_queue
from hotline.console import seats
from hotline.registry import Mode
from hotline.reports.metrics import Period, call_metrics
from hotline.telephony.pbx import seat_pbx
from hotline.telephony.sandbox import free_port

ANSWERING_SUBCENTRES = {n for n, how in SUBCENTRES.items() if how == "answer"}


async def ready_agents(system: PhoneSystem, count: int) -> dict[str, int]:
    """``count`` agents given a phone and every dual line's skill by the admin, who then
    click 置闲 (ready): the backend makes their phones members of the 12345 and skill
    queues. Returns interface → user id."""
    skills = sorted({line.skill for line in system.registry if line.mode is Mode.DUAL})
    agents: dict[str, int] = {}
    for i in range(count):
        interface = f"Local/{8001 + i}@agents"
        user = await create_user(system.pool, f"agent-{8001 + i}", TEST_PASSWORD, ("agent",))
        await seats.set_phone(system.pool, system.registry, user.id, interface=interface, skills=skills,
                              by_name="admin")
        await seats.change_state(system.pool, user.id, "ready", pbx=seat_pbx(system.runtime))
        agents[interface] = user.id
    for queue in [system.registry.platform.queue, *sorted({skill_queue(line) for line in system.registry
                                                           if line.mode is Mode.DUAL})]:
        assert set(agents) <= set(await asyncio.to_thread(system.pbx.queue_members, queue)), queue
    return agents


def queue_log_counts(text: str, callids: set[str]) -> dict[str, int]:
    """Offered / answered / abandoned calls as Asterisk's queue_log tells them."""
    events: dict[str, set[str]] = {"ENTERQUEUE": set(), "CONNECT": set(), "ABANDON": set()}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 5 and parts[1] in callids and parts[4] in events:
            events[parts[4]].add(parts[1])
    return {"offered": len(events["ENTERQUEUE"]), "answered": len(events["CONNECT"]),
            "abandoned": len(events["ABANDON"] - events["CONNECT"])}


async def test_a_call_on_each_of_the_33_numbers(phone_system: PhoneSystem) -> None:
    system = phone_system
    await asyncio.to_thread(system.pbx.rx, "dialplan set global TALK 2")
    agents = await ready_agents(system, 10)
    offered: list[dict[str, Any]] = []
    listener = await system.runtime.events()
    unsubscribe = listener.subscribe("call.offered", lambda _topic, payload: offered.append(payload))  # type: ignore[func-returns-value,arg-type]
    lines = sorted(line.number for line in system.registry)
    assert len(lines) == 33
    callers = {number: f"139{i:08d}" for i, number in enumerate(lines)}
    try:
        for number in lines:
            await system.call(number, callers[number], stay=60)

        async def all_ended() -> list[Any] | None:
            rows = await system.calls()
            done = [r for r in rows if r["ended_at"] is not None]
            return rows if len(rows) >= 33 and len(done) == len(rows) else None

        rows = await system.eventually(all_ended, timeout=120, what="33 calls ended")
        # the records follower has read every Asterisk row of them
        await system.eventually(lambda: _cdr_settled(system), timeout=30, what="CDR rows linked")
        rows = await system.calls()
    finally:
        unsubscribe()

    # exactly one record per citizen call, on the dialled line, with its mode's route
    assert len(rows) == 33, [(r["call_uid"], r["hotline_number"], r["source"]) for r in rows]
    by_line = {r["hotline_number"]: r for r in rows}
    assert sorted(by_line) == lines
    for number, row in by_line.items():
        line = system.registry.get(number)
        assert line is not None
        assert row["caller_number"] == callers[number]
        assert row["route"] == line.mode.value, (number, row["route"])
        assert row["state"] == "completed", (number, row["state"], row["decisions"])
        if number in ANSWERING_SUBCENTRES:
            assert row["agent_id"] is None and row["answered_by"] == line.dial_target
            continue
        # answered by an agent: the agent is on the record and the call popped on their console
        assert row["agent_id"] in agents.values(), (number, row["answered_by"], row["decisions"])
        assert agents[row["answered_by"]] == row["agent_id"]
        assert {"call_id": row["id"], "user_id": row["agent_id"], "hotline_number": number} in offered
        if line.mode is Mode.SUBCENTER:  # rang out, busy or congested: back to 12345
            outcome = {"ringout": "no_answer", "busy": "busy", "congest": "unreachable"}[SUBCENTRES[number]]
            steps = [d for d in row["decisions"] if d.get("step") == "dial_result"]
            assert [d["outcome"] for d in steps] == [outcome]
            assert row["queue"] == system.registry.platform.queue
        elif line.mode is Mode.DUAL:
            assert row["skill"] == line.skill
        assert row["queued_at"] is not None and row["answered_at"] >= row["queued_at"]

    # every Asterisk row of the test belongs to one of these calls: legs are never calls
    unlinked = await system.pool.fetchval("SELECT count(*) FROM cdr_records WHERE call_id IS NULL")
    assert unlinked == 0

    # the supervisor's figures equal what Asterisk's queue_log says for the same calls
    today = rows[0]["started_at"].astimezone(system.runtime.settings.tz).date()
    period = Period.parse(str(today - timedelta(days=1)), str(today + timedelta(days=1)), system.runtime.settings.tz)
    report = await call_metrics(system.pool, period, "total", tz=system.runtime.settings.timezone)
    expected = queue_log_counts(system.pbx.queue_log.read_text(), {r["call_uid"] for r in rows})
    assert expected["offered"] == 33 - len(ANSWERING_SUBCENTRES)
    assert {k: report[0][k] for k in ("offered", "answered", "abandoned")} == expected
    assert Counter(r["hotline_number"] for r in rows) == Counter(lines)


async def _cdr_settled(system: PhoneSystem) -> bool:
    calls = await system.pool.fetchval("SELECT count(*) FROM calls")
    linked = await system.pool.fetchval("SELECT count(DISTINCT call_id) FROM cdr_records")
    pending = system.pbx.cdr_csv.exists() and system.pbx.cdr_csv.stat().st_size > 0
    return bool(pending and linked == calls)


async def test_a_backend_restart_loses_no_call_and_doubles_none(
    settings: Any, pbx_registry: Any, db_url: str, pbx: Any,
) -> None:
    """Agents signed on through the console keep answering while the whole backend is
    down (FastAGI, records, AMI); after it restarts each of those calls is recorded
    once, on the line the citizen dialled; the next call is routed by the AGI again."""
    fixed = replace(settings, agi=replace(settings.agi, port=free_port()))  # a restarted node's own port
    system = await start_phone_system(fixed, pbx_registry, db_url, pbx)
    try:
        agents = {}
        for ext in ("8001", "8002"):
            user = await create_user(system.pool, f"agent-{ext}", TEST_PASSWORD, ("agent",))
            await seats.set_phone(system.pool, system.registry, user.id, interface=f"Local/{ext}@agents",
                                  skills=["hrss"], by_name="test")
            await seats.change_state(system.pool, user.id, "ready", pbx=seat_pbx(system.runtime))
            agents[f"Local/{ext}@agents"] = user.id

        await system.stop_services()  # the backend is down: FastAGI, records follower, AMI
        lines = {"12345": "13900000001", "12333": "13900000002", "12366": "13900000003"}
        for line, caller in lines.items():
            await system.call(line, caller, stay=30)

        async def all_answered_and_over() -> bool:
            text = system.pbx.queue_log.read_text() if system.pbx.queue_log.exists() else ""
            return text.count("|CONNECT|") == 3 and text.count("|COMPLETE") == 3

        await system.eventually(all_answered_and_over, timeout=60, what="three calls answered by agents")
        assert await system.pool.fetchval("SELECT count(*) FROM calls") == 0  # nobody recorded them yet

        await system.start_services()  # the backend is back
        await system.call("12345", "13900000009", stay=3)  # and routes the next call itself

        async def recorded() -> list[Any] | None:
            rows = await system.calls()
            done = [r for r in rows if r["ended_at"] is not None and r["agent_id"] is not None]
            return rows if len(rows) == 4 and len(done) == 4 else None

        rows = await system.eventually(recorded, timeout=60, what="four calls recorded")
        by_caller = {r["caller_number"]: r for r in rows}
        for line, caller in lines.items():
            row = by_caller[caller]
            assert row["hotline_number"] == line and row["route"] == "fallback", dict(row)
            assert row["agent_id"] == agents[row["answered_by"]]
        assert by_caller["13900000009"]["route"] == "platform"
        assert by_caller["13900000009"]["source"] == "agi"
        # the agents are still members: the restarted reconcile kept the signed-on seats
        members = await asyncio.to_thread(system.pbx.queue_members, system.registry.platform.queue)
        assert set(agents) <= set(members)
    finally:
        await stop_phone_system(system)
