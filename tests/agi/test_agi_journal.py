"""A citizen's call is routed even when our backend fails: PostgreSQL goes away,
calls keep their routes (from the in-memory registry) and their records go to the
durable journal; when it is back, the journal is replayed in order, nothing lost,
nothing doubled."""

from __future__ import annotations

import asyncio
import json
import shutil

import asyncpg
from support import wait_for

from hotline.agi.peer import run_call, simulate_call


async def _database_down(cluster, db_url: str) -> str:
    name = db_url.split("?")[0].rsplit("/", 1)[1]
    conn = await asyncpg.connect(cluster.admin_url)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await conn.close()
    return name


async def _database_up(cluster, name: str) -> None:
    conn = await asyncpg.connect(cluster.admin_url)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await conn.close()


async def test_database_down_then_back(agi, pool: asyncpg.Pool, cluster, db_url: str) -> None:
    before = await simulate_call(agi.host, agi.port, dialled="12345", caller="13800000001", hangup=False)
    assert (await agi.call_row(pool, before.uid))["state"] == "queued"

    agi.ctx.store.retry_after = 0.2  # how long flows skip the database after a failure
    name = await _database_down(cluster, db_url)
    try:
        routes = {}
        for number in ("12349", "12315", "12366"):
            t = await run_call(agi.host, agi.port, f"incoming?line={number}",
                               {"agi_uniqueid": f"down-{number}", "agi_callerid": "13800000002"})
            routes[number] = t
        # routed from the in-memory registry, as if nothing happened
        assert routes["12349"].var("HOTLINE_ROUTE") == "merged"
        assert routes["12315"].var("HOTLINE_ROUTE") == "dual"
        assert routes["12366"].var("HOTLINE_DIAL_TARGET") == "PJSIP/12366@subcenter-tax"
        assert all(t.var("HOTLINE_CALL_ID") is None for t in routes.values())
        # a full call during the outage, and the end of a call that started before it
        during = await simulate_call(agi.host, agi.port, dialled="12366", caller="13800000003",
                                     dialstatus="NOANSWER")
        await run_call(agi.host, agi.port, "hangup", {"agi_uniqueid": before.uid}, args=[before.uid, "", "", "16"])
        await agi.idle()
        assert agi.ctx.journal.has_pending()
        lines = agi.ctx.journal.live_path.read_text().splitlines()
        assert [json.loads(line)["op"] for line in lines] == ["start", "start", "start", "start", "update", "end", "end"]
    finally:
        await _database_up(cluster, name)

    # back: a new call's end arrives before the replay; it must queue behind the journal
    await run_call(agi.host, agi.port, "hangup", {"agi_uniqueid": "down-12349"}, args=["down-12349", "", "", "16"])
    assert agi.ctx.journal.has_pending()
    # ...while a new call's first record goes straight in (nothing of it can be in the journal)
    await wait_for(lambda: agi.ctx.store.believed_up, what="the flows trust the database again")
    t = await run_call(agi.host, agi.port, "incoming?line=12345", {"agi_uniqueid": "back-new"})
    assert t.var("HOTLINE_CALL_ID")
    saved = agi.ctx.journal.directory / "copy.jsonl"
    shutil.copy(agi.ctx.journal.live_path, saved)

    result = await agi.ctx.journal.replay(agi.ctx.store)
    assert (result.applied, result.skipped, result.waiting, result.rejected) == (8, 0, 0, 0)
    assert not agi.ctx.journal.has_pending()

    uids = ["down-12349", "down-12315", "down-12366", during.uid, before.uid]
    rows = {r["call_uid"]: r for r in await pool.fetch("SELECT * FROM calls WHERE call_uid = ANY($1)", uids)}
    assert set(rows) == set(uids)
    assert rows["down-12349"]["route"] == "merged" and rows["down-12349"]["state"] == "abandoned"
    assert rows["down-12366"]["dial_target"] == "PJSIP/12366@subcenter-tax"
    assert rows[before.uid]["state"] == "abandoned"  # started in the database, ended from the journal
    d = rows[during.uid]
    assert d["state"] == "abandoned" and d["queue"] == "hotline-12345"
    assert [x["step"] for x in d["decisions"]].count("dial_result") == 1
    assert any(x["step"] == "database" for x in d["decisions"])

    # a replay interrupted by a crash is run again: nothing doubles
    shutil.move(saved, agi.ctx.journal.directory / "calls.00000000000000000001.replaying")
    again = await agi.ctx.journal.replay(agi.ctx.store)
    assert (again.applied, again.skipped) == (0, 8)
    assert await pool.fetchval("SELECT count(*) FROM calls WHERE call_uid = ANY($1)", uids) == 5
    d2 = await agi.call_row(pool, during.uid)
    assert d2["decisions"] == d["decisions"]

    # and flows write straight to the database again
    t = await run_call(agi.host, agi.port, "incoming?line=12345", {"agi_uniqueid": "after-1"})
    assert t.var("HOTLINE_CALL_ID")


async def test_torn_journal_line_is_kept_aside_not_lost(agi, pool: asyncpg.Pool) -> None:
    from hotline.calls.store import make_entry

    journal = agi.ctx.journal
    journal.append(make_entry("start", "torn-1", {"hotline_number": "12345", "route": "platform"}))
    with journal.live_path.open("ab") as fh:
        fh.write(b'{"id": "x", "op": "sta')  # a crash in the middle of a write
    result = await journal.replay(agi.ctx.store)
    assert (result.applied, result.rejected) == (1, 1)
    assert (journal.directory / "rejected.jsonl").read_bytes().startswith(b'{"id": "x"')
    assert (await agi.call_row(pool, "torn-1"))["route"] == "platform"


async def test_concurrent_appends_share_fsyncs(tmp_path) -> None:

    from hotline.calls.journal import Journal
    from hotline.calls.store import make_entry

    journal = Journal(tmp_path / "journal")
    await asyncio.gather(*(journal.append_async(make_entry("start", f"g-{i}", {})) for i in range(50)))
    lines = journal.live_path.read_text().splitlines()
    assert sorted(json.loads(line)["uid"] for line in lines) == sorted(f"g-{i}" for i in range(50))
    assert journal.written == 50 and journal.syncs < 50  # group commit


async def test_poison_entry_is_set_aside_and_the_rest_replayed(agi, pool: asyncpg.Pool) -> None:
    from hotline.calls.store import make_entry

    journal = agi.ctx.journal
    journal.append(make_entry("start", "poison-1", {"hotline_number": "00000", "route": "platform"}))  # FK violation
    journal.append(make_entry("start", "after-poison", {"hotline_number": "12345", "route": "platform"}))
    result = await journal.replay(agi.ctx.store)
    assert (result.applied, result.rejected) == (1, 1)
    assert b"poison-1" in (journal.directory / "rejected.jsonl").read_bytes()
    assert await agi.call_row(pool, "after-poison") is not None
    assert not journal.has_pending()
