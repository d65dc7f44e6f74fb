"""Faults: a server killed in the middle of a batch, quarantine re-processing after a
fix, and the outbox/feed rows living and dying with their transaction."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys

import aiohttp
from ingest_records import call_record

from hotline.config import PROJECT_ROOT
from hotline.db.pool import connect
from hotline.ingest.signing import sign_headers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_server(settings, db_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "HOTLINE_DATABASE_URL": db_url, "HOTLINE_DATA_DIR": str(settings.data_dir),
           "HOTLINE_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotline", "serve", "--no-agi", "--no-scheduler", "--no-workers",
         "--web-port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("hotline serve did not start")


async def _post(port: int, code: str, key: str, records: list[dict]) -> tuple[int, dict]:
    body = json.dumps({"records": records}).encode()
    headers = {**sign_headers(code, key, "POST", "/api/v1/ingest/calls", body), "Content-Type": "application/json"}
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
        for _ in range(200):
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the batch never reached the merge"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            await sending
            raise AssertionError("the killed server answered")
        except aiohttp.ClientError:
            pass  # the client sees a dropped connection and will resend
        await tx.rollback()
        for _ in range(200):  # the orphaned backend rolls back once it may run again
            if not await pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hotline' "
                    "AND state <> 'idle' AND pid <> pg_backend_pid() AND datname = current_database()"):
                break
            await asyncio.sleep(0.05)
        assert await pool.fetchval("SELECT count(*) FROM subcenter_calls") == 0
        assert await pool.fetchval("SELECT count(*) FROM ingest_batches") == 0
        assert await pool.fetchval("SELECT count(*) FROM change_log WHERE entity = 'subcenter_call'") == 0
    finally:
        await blocker.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc = await _start_server(settings, db_url, port)
    try:
        status, body = await _post(port, subcentre.code, subcentre.key, records)
        assert status == 200 and body["counts"]["accepted"] == 50
        await asyncio.sleep(1.01)  # a new timestamp: a resend after a lost answer, not an exact replay
        status, body = await _post(port, subcentre.code, subcentre.key, records)
        assert status == 200 and body["counts"]["duplicate"] == 50
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
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
    assert (done["status"], done["outcome"]) == ("reprocessed", "accepted")
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
