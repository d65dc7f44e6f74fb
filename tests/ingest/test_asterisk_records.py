"""Asterisk records: Master.csv and queue_log followed like tail -F, cdr_pgsql rows,
grouped by linkedid and matched to our AGI calls without double counting: a call is
the citizen's channel (the row the dialplan tags ``hotline:<line>``, or the AGI's
record); every other leg is linked to it and never counted as a call."""

from __future__ import annotations

import os
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from support import wait_for

from hotline.ingest.cdr import import_cdr_table
from hotline.ingest.follower import FileFollower

TZ = ZoneInfo("Asia/Shanghai")


def cdr(uniqueid: str, linkedid: str, *, src: str = "13812345678", dst: str = "12345", start: str = "09:00:00",
        answer: str = "09:00:10", end: str = "09:03:10", disposition: str = "ANSWERED",
        channel: str = "PJSIP/trunk-0001", dstchannel: str = "PJSIP/8001-0002", seq: int = 1,
        userfield: str | None = None, billsec: int = 180, lastapp: str = "Queue") -> str:
    """One 21-column Master.csv line; the citizen's channel is tagged ``hotline:<dst>``
    unless ``userfield`` says otherwise ("" for a leg)."""
    day = "2026-11-27"
    tag = f"hotline:{dst}" if userfield is None else userfield
    cells = ["", src, dst, "from-pstn", f'"" <{src}>', channel, dstchannel, lastapp, "hotline-12345",
             f"{day} {start}", f"{day} {answer}" if answer else "", f"{day} {end}", "190", str(billsec),
             disposition, "DOCUMENTATION", uniqueid, tag, "", linkedid, str(seq)]
    return ",".join(f'"{c}"' if not c.isdigit() else c for c in cells) + "\n"


async def _agi_call(pool, uid: str, state: str = "answered", started: str = "09:00:00") -> int:
    return await pool.fetchval(
        """INSERT INTO calls (call_uid, linkedid, hotline_number, caller_number, state, started_at)
           VALUES ($1, $1, '12345', '13812345678', $2, ('2026-11-27 ' || $3 || '+08')::timestamptz)
           RETURNING id""", uid, state, started)


async def test_master_csv_grouped_by_linkedid_matched_without_double_counting(pool, tmp_path) -> None:
    agi_id = await _agi_call(pool, "1700000000.1")
    path = tmp_path / "Master.csv"
    path.write_text(
        cdr("1700000000.1", "1700000000.1")  # the inbound leg of our AGI call
        + cdr("1700000000.2", "1700000000.1", channel="Local/8001@agents-0001;2", seq=2, userfield="")  # a leg
        + cdr("1700000100.5", "1700000100.5", answer="", disposition="NO ANSWER", dst="12366",
              billsec=0)  # CDR only: the backend never saw it
    )
    follower = FileFollower(pool, str(path), "cdr_csv", TZ)
    result = await follower.poll()
    follower.close()
    assert (result.imported, result.calls_matched, result.calls_created) == (3, 1, 1)
    calls = await pool.fetch("SELECT * FROM calls ORDER BY id")
    assert len(calls) == 2
    ours, theirs = calls
    assert ours["id"] == agi_id and ours["source"] == "agi" and ours["state"] == "completed"
    assert ours["ended_at"] == datetime(2026, 11, 27, 9, 3, 10, tzinfo=TZ)
    assert float(ours["talk_seconds"]) == 180.0
    assert theirs["source"] == "cdr" and theirs["call_uid"] == "1700000100.5"
    assert theirs["state"] == "abandoned" and theirs["hotline_number"] == "12366"
    assert await pool.fetchval("SELECT count(*) FROM cdr_records WHERE call_id IS NULL") == 0

    # the same file read again (offset lost): nothing changes
    await pool.execute("DELETE FROM ingest_file_offsets")
    again = FileFollower(pool, str(path), "cdr_csv", TZ)
    result = await again.poll()
    again.close()
    assert (result.imported, result.duplicates) == (0, 3)
    assert await pool.fetchval("SELECT count(*) FROM calls") == 2


async def test_follower_resumes_after_restart_and_waits_for_whole_lines(pool, tmp_path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(cdr("1.1", "1.1") + cdr("2.1", "2.1"))
    first = FileFollower(pool, str(path), "cdr_csv", TZ)
    assert (await first.poll()).imported == 2
    first.close()  # the node stops
    line = cdr("3.1", "3.1")
    with path.open("a") as fh:
        fh.write(line + line[:20])  # a half-written line at the end
    second = FileFollower(pool, str(path), "cdr_csv", TZ)
    result = await second.poll()
    assert (result.imported, result.duplicates, result.bad) == (1, 0, 0)
    with path.open("a") as fh:
        fh.write(line[20:].replace("3.1", "4.1"))  # Asterisk finishes the line (another call)
    result = await second.poll()
    second.close()
    assert (result.imported, result.bad) == (1, 0)
    uids = [r["uniqueid"] for r in await pool.fetch("SELECT uniqueid FROM cdr_records ORDER BY id")]
    assert uids == ["1.1", "2.1", "3.1", "4.1"]


async def test_follower_handles_rotation_and_truncation(pool, tmp_path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(cdr("1.1", "1.1"))
    follower = FileFollower(pool, str(path), "cdr_csv", TZ)
    assert (await follower.poll()).imported == 1
    with path.open("a") as fh:
        fh.write(cdr("2.1", "2.1"))  # appended just before rotation, not yet read
    os.rename(path, tmp_path / "Master.csv.1")
    path.write_text(cdr("3.1", "3.1"))
    result = await follower.poll()
    assert result.imported == 2
    path.write_text(cdr("4.1", "4.1")[:0])  # copytruncate: same file, now empty
    with path.open("a") as fh:
        fh.write(cdr("5.1", "5.1"))
    result = await follower.poll()
    follower.close()
    assert result.imported == 1
    uids = [r["uniqueid"] for r in await pool.fetch("SELECT uniqueid FROM cdr_records ORDER BY id")]
    assert uids == ["1.1", "2.1", "3.1", "5.1"]
    assert await pool.fetchval("SELECT count(*) FROM calls") == 4


async def test_queue_log_fills_wait_and_talk_of_our_call(pool, tmp_path) -> None:
    call_id = await _agi_call(pool, "1700000200.7", state="ringing")  # started 2026-11-27 01:00:00 UTC
    path = tmp_path / "queue_log"
    path.write_text(
        "1795741200|NONE|NONE|NONE|QUEUESTART|\n"
        "1795741201|1700000200.7|hotline-12345|NONE|ENTERQUEUE||13812345678|1\n"
        "1795741213|1700000200.7|hotline-12345|PJSIP/8001|CONNECT|12|1700000200.8|3\n"
        "1795741400|1700000200.7|hotline-12345|PJSIP/8001|COMPLETECALLER|12|187|1\n"
        "1795741390|1700000300.1|hotline-12345|NONE|ABANDON|1|1|190\n"
        "garbage\n"
    )
    follower = FileFollower(pool, str(path), "queue_log", TZ)
    result = await follower.poll()
    follower.close()
    assert (result.imported, result.calls_matched, result.bad) == (4, 3, 1)
    call = await pool.fetchrow("SELECT * FROM calls WHERE id = $1", call_id)
    assert call["state"] == "completed" and call["answered_by"] == "PJSIP/8001"
    # the same semantics as the AGI's operations: offered when it entered the queue, the
    # wait measured from the call's start (13 s: 1 s before it joined the queue), talk to the end
    assert call["queued_at"] == datetime(2026, 11, 27, 9, 0, 1, tzinfo=TZ)
    assert float(call["wait_seconds"]) == 13 and float(call["talk_seconds"]) == 187
    # the abandoned call's CDR arrives later: its call row is created once and takes the queue event
    cdr_path = tmp_path / "Master.csv"
    cdr_path.write_text(cdr("1700000300.1", "1700000300.1", answer="", disposition="NO ANSWER", billsec=0))
    follower = FileFollower(pool, str(cdr_path), "cdr_csv", TZ)
    await follower.poll()
    follower.close()
    late = await pool.fetchrow("SELECT * FROM calls WHERE call_uid = '1700000300.1'")
    assert late["state"] == "abandoned" and late["disposition"] == "abandoned"
    assert late["ended_at"] == datetime(2026, 11, 27, 9, 3, 10, tzinfo=TZ) and float(late["wait_seconds"]) == 190
    assert await pool.fetchval("SELECT count(*) FROM queue_log_events WHERE call_id IS NULL") == 0


async def test_cdr_pgsql_table_import(pool, db_url) -> None:
    await _agi_call(pool, "1700000400.1", started="10:00:00")
    await pool.execute(
        """CREATE TABLE cdr (calldate timestamp NOT NULL, clid text, src text, dst text, dcontext text,
                             channel text, dstchannel text, lastapp text, lastdata text, duration int,
                             billsec int, disposition text, amaflags int, accountcode text, uniqueid text,
                             userfield text, peeraccount text, linkedid text, sequence int)""")
    rows = [
        ("2026-11-27 10:00:00", "1700000400.1", "1700000400.1", 200, 170, "ANSWERED"),
        ("2026-11-27 10:00:05", "1700000400.2", "1700000400.1", 195, 170, "ANSWERED"),
        ("2026-11-27 10:05:00", "1700000500.1", "1700000500.1", 30, 0, "NO ANSWER"),
    ]
    for calldate, uid, linked, duration, billsec, disposition in rows:
        await pool.execute(
            """INSERT INTO cdr (calldate, src, dst, channel, dstchannel, duration, billsec, disposition, uniqueid,
                                linkedid, userfield)
               VALUES ($1::text::timestamp, '13900000000', '12345', 'PJSIP/trunk', 'PJSIP/8001-00a1', $2, $3, $4,
                       $5, $6, CASE WHEN $5 = $6 THEN 'hotline:12345' END)""",  # the leg (.2) is untagged
            calldate, duration, billsec, disposition, uid, linked)
    async with pool.acquire() as source:
        result = await import_cdr_table(source, pool, tz=TZ)
        again = await import_cdr_table(source, pool, tz=TZ)
    assert (result.imported, result.calls_matched, result.calls_created) == (3, 1, 1)
    assert (again.imported, again.duplicates) == (0, 3)
    ours = await pool.fetchrow("SELECT * FROM calls WHERE call_uid = '1700000400.1'")
    assert ours["state"] == "completed"
    assert ours["answered_at"] == datetime(2026, 11, 27, 10, 0, 30, tzinfo=TZ)
    assert await pool.fetchval("SELECT count(*) FROM calls") == 2


async def test_follower_node_service(runtime, pool, tmp_path) -> None:
    from dataclasses import replace

    from hotline.ingest.service import create_service
    from hotline.services import NodeOptions

    assert create_service(runtime, NodeOptions()) is None  # nothing configured
    path = tmp_path / "Master.csv"
    path.write_text(cdr("9.1", "9.1"))
    runtime.settings = replace(runtime.settings, extra={**runtime.settings.extra,
                                                        "ingest": {"cdr_csv": str(path), "follow_interval": 0.05}})
    service = create_service(runtime, NodeOptions())
    assert service is not None and service.role == "workers"
    await service.start()
    try:
        with path.open("a") as fh:
            fh.write(cdr("9.2", "9.2"))
        async def both() -> bool:
            return await pool.fetchval("SELECT count(*) FROM calls") >= 2

        await wait_for(both, what="the appended record followed")
    finally:
        await service.stop()
    assert await pool.fetchval("SELECT count(*) FROM cdr_records") == 2


async def test_a_failed_import_leaves_the_offset_where_the_committed_rows_end(pool, tmp_path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(cdr("1.1", "1.1"))
    follower = FileFollower(pool, str(path), "cdr_csv", TZ)
    assert (await follower.poll()).imported == 1
    with path.open("a") as fh:
        fh.write(cdr("2.1", "2.1") + cdr("3.1", "3.1"))
    # fault injection: the database refuses the next rows (as if it went away mid-import)
    await pool.execute("""CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                          $$ BEGIN RAISE EXCEPTION 'database gone'; END $$""")
    await pool.execute("CREATE TRIGGER refuse BEFORE INSERT ON cdr_records FOR EACH ROW EXECUTE FUNCTION refuse()")
    offset = await pool.fetchval('SELECT "offset" FROM ingest_file_offsets')
    with pytest.raises(asyncpg.RaiseError, match="database gone"):
        await follower.poll()
    assert await pool.fetchval('SELECT "offset" FROM ingest_file_offsets') == offset
    await pool.execute("DROP TRIGGER refuse ON cdr_records")
    result = await follower.poll()
    follower.close()
    assert (result.imported, result.duplicates) == (2, 0)
    assert await pool.fetchval("SELECT count(*) FROM calls") == 3


async def test_untagged_legs_are_no_call_until_their_tagged_row_arrives(pool, tmp_path) -> None:
    path = tmp_path / "Master.csv"
    # the agent's leg and the Local ;1 caller side are written first (they hang up first)
    path.write_text(
        cdr("1796060429.13", "1796060429.8", channel="Local/8001@agents-00000006;2", dstchannel="", dst="8001",
            userfield="")
        + cdr("1796060429.8", "1796060429.8", channel="Local/12366@test-tag-00000004;1", dstchannel="",
              userfield="", lastapp="Wait"))
    follower = FileFollower(pool, str(path), "cdr_csv", TZ)
    result = await follower.poll()
    assert (result.imported, result.calls_matched, result.calls_created) == (2, 0, 0)
    assert await pool.fetchval("SELECT count(*) FROM calls") == 0
    assert await pool.fetchval("SELECT count(*) FROM cdr_records WHERE call_id IS NULL") == 2
    with path.open("a") as fh:  # the citizen's rows: a busy sub-centre, then the 12345 queue
        fh.write(cdr("1796060429.9", "1796060429.8", dst="12366", channel="Local/12366@test-tag-00000004;2",
                     dstchannel="Local/busy@subcenters-00000005;1", disposition="BUSY", billsec=0, lastapp="Dial",
                     userfield="hotline:12366:fallback")
                 + cdr("1796060429.9", "1796060429.8", dst="12366", channel="Local/12366@test-tag-00000004;2",
                       dstchannel="Local/8001@agents-00000006;1", userfield="hotline:12366:fallback", seq=2))
    result = await follower.poll()
    follower.close()
    assert (result.imported, result.calls_created) == (2, 1)
    (call,) = await pool.fetch("SELECT * FROM calls")
    assert call["call_uid"] == "1796060429.9" and call["linkedid"] == "1796060429.8"
    assert call["hotline_number"] == "12366" and call["route"] == "fallback" and call["source"] == "cdr"
    assert call["state"] == "completed" and call["answered_by"] == "Local/8001@agents"
    assert call["decisions"][0]["outcome"] == "recorded_from_cdr"
    assert await pool.fetchval("SELECT count(*) FROM cdr_records WHERE call_id = $1", call["id"]) == 4


async def test_a_leg_tagged_for_a_call_is_filed_under_it_even_before_the_call_is_recorded(pool, tmp_path) -> None:
    """A supervisor's spy leg (userfield ``hotline-leg:<call_uid>``, its own linkedid, a
    Local phone's second half beside it) belongs to the spied call: never a call of its
    own; when its row arrives before the call's record (the journal replays it later),
    it waits and is filed once the call exists."""
    from hotline.ingest.cdr import settle_pending

    path = tmp_path / "Master.csv"
    path.write_text(
        cdr("1796070000.7", "1796070000.6", channel="Local/8901@agents-00000003;2", dstchannel="", dst="8901",
            userfield="", lastapp="Answer")
        + cdr("1796070000.6", "1796070000.6", channel="Local/8901@agents-00000003;1", dstchannel="", dst="s",
              userfield="hotline-leg:1796069990.1", lastapp="ChanSpy"))
    follower = FileFollower(pool, str(path), "cdr_csv", TZ)
    result = await follower.poll()
    follower.close()
    assert (result.imported, result.calls_matched, result.calls_created, result.waiting) == (2, 0, 0, 1)
    assert await pool.fetchval("SELECT count(*) FROM calls") == 0
    # the spied call's record arrives (journal replay after a database outage)
    call_id = await _agi_call(pool, "1796069990.1")
    async with pool.acquire() as conn:
        assert await settle_pending(conn) == 1
    assert await pool.fetchval("SELECT count(*) FROM calls") == 1
    assert await pool.fetchval("SELECT count(*) FROM cdr_records WHERE call_id = $1", call_id) == 2
    (call,) = await pool.fetch("SELECT * FROM calls")
    assert call["state"] == "answered"  # a spy leg's ANSWERED is not the call's end
