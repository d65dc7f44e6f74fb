"""Faults: a server killed in the middle of a batch, quarantine re-processing after a
fix, and the outbox/feed rows living and dying with their transaction."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time

import aiohttp
from ingest_records import call_record
from support import wait_for

from hotline.config import PROJECT_ROOT
from hotline.db.pool import connect
from hotline.ingest.signing import sign_headers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_server(settings, db_url: str, port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "HOTLINE_DATABASE_URL": db_url, "HOTLINE_DATA_DIR": str(settings.data_dir),
           "HOTLINE_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline", "serve", "--no-agi", "--no-scheduler", "--no-workers",
        "--web-port", str(port), cwd=PROJECT_ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def healthy() -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await wait_for(healthy, timeout=30, what="hotline serve answering /healthz")
    except AssertionError:
        proc.kill()
        await proc.wait()
        raise
    return proc


async def _post(port: int, code: str, key: str, records: list[dict], *,
                timestamp: int | None = None) -> tuple[int, dict]:
    body = json.dumps({"records": records}).encode()
    headers = {**sign_headers(code, key, "POST", "/api/v1/ingest/calls", body, timestamp=timestamp),
               "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session, session.post(
        f"http://127.0.0.1:{port}/api/v1/ingest/calls", data=body, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def test_server_killed_mid_batch_then_client_resends(subcentre, settings, db_url, pool) -> None:
    port = _free_port()
    records = [call_record(f"k{i}") for i in range(50)]
    proc = await _start_server(settings, db_url, port)
    blocker = await connect(db_url)
    try:
        # hold the merge up so that the kill lands inside the batch's transaction
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE subcenter_calls IN SHARE MODE")
        sending = asyncio.create_task(_post(port, subcentre.code, subcentre.key, records))
        await wait_for(lambda: pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"),
            what="the batch reaching the merge")
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        try:
            await sending
            raise AssertionError("the killed server answered")
        except aiohttp.ClientError:
            pass  # the client sees a dropped connection and will resend
        await tx.rollback()
        async def orphan_gone() -> bool:  # the orphaned backend rolls back once it may run again
            return not await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'hotline%' "
                "AND state <> 'idle' AND pid <> pg_backend_pid() AND datname = current_database()")

        await wait_for(orphan_gone, what="the killed server's backend rolled back")
        assert await pool.fetchval("SELECT count(*) FROM subcenter_calls") == 0
        assert await pool.fetchval("SELECT count(*) FROM ingest_batches") == 0
        assert await pool.fetchval("SELECT count(*) FROM change_log WHERE entity = 'subcenter_call'") == 0
    finally:
        await blocker.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    proc = await _start_server(settings, db_url, port)
    try:
        sent_at = int(time.time())
        status, body = await _post(port, subcentre.code, subcentre.key, records, timestamp=sent_at)
        assert status == 200 and body["counts"]["accepted"] == 50
        # signed a second later: a resend after a lost answer, not an exact replay
        status, body = await _post(port, subcentre.code, subcentre.key, records, timestamp=sent_at + 1)
        assert status == 200 and body["counts"]["duplicate"] == 50
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert await pool.fetchval("SELECT count(*) FROM subcenter_calls") == 50
    assert await pool.fetchval("SELECT count(*) FROM ingest_receipts WHERE outcome = 'accepted'") == 50
    assert await pool.fetchval("SELECT count(*) FROM change_log WHERE entity = 'subcenter_call'") == 50


async def test_quarantine_reprocess_after_fix(subcentre, api_as, pool) -> None:
    resp = await subcentre.send("calls", [
        call_record("q1", started_at="2026-11-27 09:00"),  # no UTC offset
        call_record("q2", hotline_number="12366", state="on-hold"),
        call_record("q3"),
    ])
    body = await resp.json()
    qids = [r["quarantine_id"] for r in body["results"] if r["status"] == "rejected"]
    assert len(qids) == 2
    supervisor = await api_as("supervisor")
    listed = await (await supervisor.get("/api/v1/ingest/quarantine", params={"source": "tax-sub"})).json()
    assert sorted(i["id"] for i in listed["items"]) == sorted(qids)
    assert listed["items"][-1]["reasons"][0]["code"] == "time_zone"

    # retrying unchanged fails again and stays open, with the reasons
    again = await (await supervisor.post(f"/api/v1/ingest/quarantine/{qids[0]}/reprocess")).json()
    assert again["status"] == "open" and again["reasons"][0]["field"] == "started_at"
    # a supervisor fixes the record
    fixed = call_record("q1", started_at="2026-11-27T09:00:00+08:00")
    done = await (await supervisor.post(f"/api/v1/ingest/quarantine/{qids[0]}/reprocess",
                                        json={"record": fixed})).json()
    assert (done["status"], done["outcome"]) == ("reprocessed", "accepted"), done
    assert (await supervisor.post(f"/api/v1/ingest/quarantine/{qids[0]}/reprocess")).status == 409
    # the sub-centre resends the other one corrected: the quarantine entry is superseded
    await subcentre.send("calls", [call_record("q2", state="completed")])
    assert await pool.fetchval("SELECT status FROM ingest_quarantine WHERE id = $1", qids[1]) == "superseded"
    assert await pool.fetchval("SELECT count(*) FROM subcenter_calls") == 3
    assert await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'quarantine_reprocessed'") == 2


async def test_reprocess_all_after_reference_data_fix(subcentre, api_as, pool) -> None:
    await pool.execute("UPDATE hotlines SET active = false WHERE number = '12366'")
    body = await (await subcentre.send("calls", [call_record("r1"), call_record("r2")])).json()
    assert body["counts"]["rejected"] == 2
    await pool.execute("UPDATE hotlines SET active = true WHERE number = '12366'")  # the registry is fixed
    admin = await api_as("admin")
    result = await (await admin.post("/api/v1/ingest/quarantine/reprocess", json={"source": "tax-sub"})).json()
    assert (result["tried"], result["reprocessed"], result["still_open"]) == (2, 2, 0)
    assert await pool.fetchval("SELECT count(*) FROM subcenter_calls") == 2
    # each entry audited with its own change, the summary once
    rows = await pool.fetch("SELECT action, detail FROM audit_log WHERE action LIKE 'quarantine_reprocessed%' "
                            "ORDER BY id")
    assert [r["action"] for r in rows] == ["quarantine_reprocessed"] * 2 + ["quarantine_reprocessed_all"]
    assert all(r["detail"]["bulk"] for r in rows[:2])


async def test_a_discard_is_audited_with_its_note_in_its_transaction(subcentre, api_as, pool) -> None:
    body = await (await subcentre.send("calls", [call_record("d1", started_at="2026-11-27 09:00")])).json()
    qid = body["results"][0]["quarantine_id"]
    supervisor = await api_as("supervisor")
    resp = await supervisor.post(f"/api/v1/ingest/quarantine/{qid}/discard", json={"note": "重复推送, 已核实"})
    assert resp.status == 200
    row = await pool.fetchrow("SELECT object_id, detail FROM audit_log WHERE action = 'quarantine_discarded'")
    assert row["object_id"] == str(qid) and row["detail"] == {"note": "重复推送, 已核实"}
    # discarding again is refused and audits nothing more
    assert (await supervisor.post(f"/api/v1/ingest/quarantine/{qid}/discard", json={"note": "again"})).status == 409
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'quarantine_discarded'") == 1


async def test_change_rows_commit_and_roll_back_with_the_change(pool) -> None:
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("INSERT INTO calls (call_uid, hotline_number) VALUES ('gone', '12345')")
        assert await conn.fetchval("SELECT count(*) FROM change_log") == 1
        await tx.rollback()
    assert await pool.fetchval("SELECT count(*) FROM change_log") == 0
    await pool.execute("INSERT INTO calls (call_uid, hotline_number) VALUES ('kept', '12345')")
    await pool.execute("UPDATE calls SET updated_at = updated_at WHERE call_uid = 'kept'")  # no real change
    rows = await pool.fetch("SELECT entity, op FROM change_log")
    assert [(r["entity"], r["op"]) for r in rows] == [("call", "insert")]


async def test_tickets_are_captured_for_feed_and_outbox(pool) -> None:
    assert await pool.fetchval("SELECT feed_attach('tickets', 'ticket')")
    await pool.execute(
        "INSERT INTO tickets (hotline_number, subject, caller_number) VALUES ('12345', '路灯不亮', '13812345678')")
    row = await pool.fetchrow("SELECT entity, op, data FROM change_log WHERE entity = 'ticket'")
    assert row["op"] == "insert" and row["data"]["subject"] == "路灯不亮"
