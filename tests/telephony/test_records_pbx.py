"""Asterisk's records (Master.csv, queue_log) on a real Asterisk 22: exactly one call
record per citizen call whatever sources arrive and in whatever order (AGI, CDR,
queue_log, journal replay), the agent attached from queue_log, a backend that is
down, a database outage, and a PBX whose CDR zone is configured wrong."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from phone_support import PhoneSystem, start_phone_system, stop_phone_system
from support import TEST_PASSWORD

from hotline.auth import create_user
from hotline.calls.context import CallContext
from hotline.config import PROJECT_ROOT, Settings
from hotline.db.embedded import EmbeddedPostgres
from hotline.db.migrations import migrate
from hotline.ingest import metrics
from hotline.ingest.cdr import format_offset
from hotline.ingest.service import create_service as create_records_service
from hotline.quality.report import asterisk_records
from hotline.registry import Registry
from hotline.services import NodeOptions
from hotline.telephony.sandbox import AsteriskSandbox


async def add_agent(system: PhoneSystem, ext: str) -> int:
    """A ready seat on ``Local/<ext>@agents``, a member of the 12345 queue."""
    user = await create_user(system.pool, f"agent-{ext}", TEST_PASSWORD, ("agent",))
    await system.pool.execute(
        "INSERT INTO seats (user_id, state, interface) VALUES ($1, 'ready', $2)", user.id, f"Local/{ext}@agents")
    await system.rx(f"queue add member Local/{ext}@agents to hotline-12345")
    return int(user.id)


async def settled(system: PhoneSystem, calls: int, agent_legs: int) -> list[asyncpg.Record] | None:
    """The calls once Asterisk has hung up every channel and the follower has imported
    and linked everything: the citizens' tagged rows, the agents' legs, the queue events."""
    try:
        if await asyncio.to_thread(system.pbx.channels):
            return None
        rows = await system.pool.fetchrow(
            """SELECT count(*) FILTER (WHERE userfield LIKE 'hotline:%') AS tagged,
                      count(*) FILTER (WHERE channel LIKE 'Local/%@agents-%;2') AS agent_legs,
                      count(*) FILTER (WHERE call_id IS NULL) AS unlinked
                 FROM cdr_records""")
        pending = await system.pool.fetchval("SELECT count(*) FROM queue_log_events WHERE call_id IS NULL")
        found = await system.pool.fetch("SELECT * FROM calls ORDER BY id")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None  # the database is coming back
    if rows["agent_legs"] < agent_legs or rows["tagged"] < calls or rows["unlinked"] or pending:
        return None
    if len(found) < calls or any(c["ended_at"] is None for c in found):
        return None
    return list(found)


async def assert_one_record_per_call(system: PhoneSystem, calls: list[asyncpg.Record]) -> None:
    """Each call's uid is its citizen's (tagged) channel and every CDR row and queue event
    is linked to one of them: no leg is a call of its own."""
    for call in calls:
        tagged = await system.pool.fetch(
            "SELECT DISTINCT uniqueid FROM cdr_records WHERE call_id = $1 AND userfield LIKE 'hotline:%'", call["id"])
        assert [r["uniqueid"] for r in tagged] == [call["call_uid"]]
        legs = await system.pool.fetch("SELECT channel FROM cdr_records WHERE call_id = $1", call["id"])
        assert any(r["channel"].startswith("Local/") and "@agents-" in r["channel"] for r in legs)
        assert any("@pstn-" in r["channel"] and r["channel"].endswith(";1") for r in legs)  # the caller side
    ids = {c["id"] for c in calls}
    assert {r["call_id"] for r in await system.pool.fetch("SELECT call_id FROM cdr_records")} == ids
    assert {r["call_id"] for r in await system.pool.fetch("SELECT call_id FROM queue_log_events")} <= ids


async def test_a_call_answered_by_a_local_agent_is_one_record(phone_system: PhoneSystem) -> None:
    agent = await add_agent(phone_system, "8001")
    await phone_system.call("12345", "13912345678", stay=30)  # the agent hangs up after 5 s

    calls = await phone_system.eventually(lambda: settled(phone_system, 1, 1), what="one settled call")
    assert len(calls) == 1
    call = calls[0]
    await assert_one_record_per_call(phone_system, calls)
    assert call["source"] == "agi" and call["hotline_number"] == "12345" and call["route"] == "platform"
    assert call["state"] == "completed" and call["agent_id"] == agent
    assert call["answered_by"] == "Local/8001@agents"
    assert call["queued_at"] is not None and call["started_at"] <= call["queued_at"] <= call["answered_at"]
    assert call["answered_at"] < call["ended_at"]
    # what queue_log said is on the record, through the same operations as the AGI's
    events = {r["event"] for r in await phone_system.pool.fetch("SELECT event FROM queue_log_events")}
    assert {"ENTERQUEUE", "CONNECT"} <= events


@pytest.mark.parametrize("line", ["12360", "12366"])  # busy; rings out (5 s)
async def test_a_subcentre_call_that_comes_back_and_is_answered_is_one_record_on_its_line(
    phone_system: PhoneSystem, line: str
) -> None:
    agent = await add_agent(phone_system, "8001")
    await phone_system.call(line, "13912345678", stay=40)

    calls = await phone_system.eventually(lambda: settled(phone_system, 1, 1), timeout=45,
                                          what="one settled sub-centre call")
    assert len(calls) == 1
    call = calls[0]
    await assert_one_record_per_call(phone_system, calls)
    assert call["hotline_number"] == line and call["route"] == "subcenter"
    assert call["state"] == "completed" and call["agent_id"] == agent
    # the sub-centre leg is a leg of this call, not a call on 12345
    sub_legs = await phone_system.pool.fetchval(
        "SELECT count(*) FROM cdr_records WHERE call_id = $1 AND dstchannel LIKE 'Local/%@subcenters-%'", call["id"])
    assert sub_legs >= 1


async def test_backend_down_calls_are_answered_and_recorded_once_with_route_fallback(
    settings: Settings, pbx_registry: Registry, db_url: str, pbx: AsteriskSandbox
) -> None:
    system = await start_phone_system(settings, pbx_registry, db_url, pbx, services=("asterisk-records",))
    try:
        agents = {await add_agent(system, "8001"), await add_agent(system, "8002")}
        await system.call("12345", "13900000001", stay=30)
        await system.call("12366", "13900000002", stay=30)  # no backend: the fallback queues it, no Dial

        calls = await system.eventually(lambda: settled(system, 2, 2), timeout=45, what="two settled calls")
        assert len(calls) == 2
        await assert_one_record_per_call(system, calls)
        assert sorted(c["hotline_number"] for c in calls) == ["12345", "12366"]
        for call in calls:
            assert call["source"] == "cdr" and call["route"] == "fallback"
            assert call["state"] == "completed" and call["agent_id"] in agents
            assert call["answered_by"] in ("Local/8001@agents", "Local/8002@agents")
            assert call["caller_number"] in ("13900000001", "13900000002")
            assert call["queued_at"] is not None and call["answered_at"] is not None
            assert {"step": "cdr", "outcome": "recorded_from_cdr", "line": call["hotline_number"]}.items() <= \
                call["decisions"][0].items()
        assert {c["agent_id"] for c in calls} == agents
    finally:
        await stop_phone_system(system)


@pytest.fixture
async def outage_db(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A PostgreSQL of its own that the test stops and starts (pgserver)."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("outage"))
    await server.start()
    url = await server.ensure_database()
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn, PROJECT_ROOT / "migrations")
    finally:
        await conn.close()
    try:
        yield server, url
    finally:
        await server.stop()


@pytest.mark.parametrize("first", ["journal", "records"])
async def test_a_call_during_a_database_outage_is_recorded_once_whichever_source_writes_first(
    settings: Settings, pbx_registry: Registry, pbx: AsteriskSandbox, outage_db: Any, first: str
) -> None:
    server, url = outage_db
    system = await start_phone_system(
        settings, pbx_registry, url, pbx,
        calls={"db_timeout": 0.5, "db_retry_seconds": 0.5, "journal_replay_interval": 0.3})
    journal = Path(settings.data_dir) / "journal" / "calls.jsonl"
    try:
        agent = await add_agent(system, "8001")
        await server.stop()  # PostgreSQL goes away; the call is routed from memory and journaled
        await system.call("12345", "13912345678", stay=30)

        async def over() -> bool:
            text = journal.read_text() if journal.exists() else ""
            ops = [json.loads(line)["op"] for line in text.splitlines() if line.strip()]
            return "end" in ops and not await asyncio.to_thread(system.pbx.channels)

        await system.eventually(over, timeout=30, what="the call over, its end journaled")
        # the database returns; one source writes first, the other merges into its record
        if first == "journal":
            await system.stop_services(("asterisk-records",))
            await server.start()

            async def replayed() -> Any:
                try:
                    return await system.pool.fetchrow("SELECT * FROM calls WHERE ended_at IS NOT NULL")
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    return None

            await system.eventually(replayed, what="the journal replayed")
            service = create_records_service(system.runtime, NodeOptions(web=False, scheduler=False))
            assert service is not None
            await service.start()
            system.services.append(service)
        else:
            await system.stop_services(("agi",))  # no replay until the records are in
            await server.start()
            made = await system.eventually(lambda: settled(system, 1, 1), what="the call recorded from the CDR")
            assert made[0]["source"] == "cdr" and made[0]["route"] is None  # the routing is in the journal
            ctx = CallContext.for_runtime(system.runtime)
            result = await ctx.journal.replay(ctx.store)
            assert result.applied >= 3 and result.rejected == 0

        calls = await system.eventually(lambda: settled(system, 1, 1), what="one settled call")
        assert len(calls) == 1
        call = calls[0]
        await assert_one_record_per_call(system, calls)
        assert call["source"] == "agi" and call["hotline_number"] == "12345" and call["route"] == "platform"
        assert call["state"] == "completed" and call["agent_id"] == agent
        steps = [d.get("step") for d in call["decisions"]]
        assert "line" in steps or "route" in steps or "mode" in steps, steps  # the AGI's decisions are kept
        assert "hangup" in steps
        if first == "records":
            assert "cdr" in steps  # and the record says it was first made from the CDR
    finally:
        await stop_phone_system(system)


def host_zone_offset() -> timedelta:
    """The offset of the zone Asterisk writes Master.csv in (``usegmtime = no``): on Linux
    Asterisk's own stdtime reads /etc/localtime and ignores ``TZ`` in its environment."""
    try:
        with open("/etc/localtime", "rb") as fh:
            zone = ZoneInfo.from_file(fh)
    except OSError:
        zone = ZoneInfo("UTC")
    return datetime.now(zone).utcoffset() or timedelta(0)


async def test_a_wrong_cdr_timezone_is_detected_and_the_agi_times_kept(
    settings: Settings, pbx_registry: Registry, db_url: str, pbx: AsteriskSandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the incident: Asterisk writes its host's local time, the node reads it in another zone
    # (the node's Asia/Shanghai against a UTC host); whatever the host's zone, pick one that is wrong
    host = host_zone_offset()
    wrong = "Asia/Shanghai" if host != timedelta(hours=8) else "UTC"
    expected = (host - (datetime.now(ZoneInfo(wrong)).utcoffset() or timedelta(0))).total_seconds()
    system = await start_phone_system(settings, pbx_registry, db_url, pbx, ingest={"cdr_timezone": wrong})
    caplog.set_level(logging.WARNING, logger="hotline.ingest.cdr")
    try:
        await add_agent(system, "8001")
        await system.call("12345", "13912345678", stay=30)
        calls = await system.eventually(lambda: settled(system, 1, 1), what="one settled call")
        call = calls[0]
        skews = {r["clock_skew_seconds"] for r in await system.pool.fetch(
            "SELECT clock_skew_seconds FROM cdr_records WHERE call_id = $1 AND userfield LIKE 'hotline:%'",
            call["id"])}
        assert len(skews) == 1
        (skew,) = skews
        assert skew is not None and abs(skew - expected) <= 90
        assert abs(metrics.CDR_CLOCK_SKEW._value.get() - expected) <= 90
        offset = format_offset(expected)  # "-8:00" on a UTC host
        warnings = [r.getMessage() for r in caplog.records if "cdr_timezone" in r.getMessage()]
        assert warnings and offset in warnings[0] and repr(wrong) in warnings[0]
        # the CDR's times were not trusted over the AGI's: the record stays in one consistent clock
        assert call["started_at"] <= call["answered_at"] < call["ended_at"]
        assert (call["ended_at"] - call["started_at"]).total_seconds() < 60
        # and the data-quality report of the day shows it
        section = await asterisk_records(system.pool, datetime(2000, 1, 1, tzinfo=UTC),
                                         datetime(2100, 1, 1, tzinfo=UTC))
        assert section["clock_skewed_rows"] >= 1 and section["clock_skew"] == offset
        assert section["clock_skew_examples"] == [call["call_uid"]]
    finally:
        await stop_phone_system(system)
