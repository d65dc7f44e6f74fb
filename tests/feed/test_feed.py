"""The real-time feed: order, resume without gap or duplicate, SSE and WebSocket."""

from __future__ import annotations

import asyncio
import json

from aiohttp import WSMsgType

from hotline.db.pool import connect


async def _new_call(conn, uid: str, number: str = "13812345678") -> int:
    return await conn.fetchval(
        "INSERT INTO calls (call_uid, hotline_number, caller_number) VALUES ($1, '12345', $2) RETURNING id",
        uid, number,
    )


async def _page(api, cursor: str, **params) -> dict:
    resp = await api.get("/api/v1/feed", params={"cursor": cursor, **params})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_json_page_lists_changes_masked_in_order(api_as, pool) -> None:
    api = await api_as("supervisor")
    call_id = await _new_call(pool, "u1")
    await pool.execute("UPDATE calls SET state = 'queued' WHERE id = $1", call_id)
    page = await _page(api, "0")
    assert [(i["entity"], i["op"], i["data"]["state"]) for i in page["items"]] == [
        ("call", "insert", "ringing"), ("call", "update", "queued")]
    assert page["items"][0]["data"]["caller_number"] == "138****5678"
    assert page["cursor"] == page["items"][-1]["cursor"]
    assert (await _page(api, page["cursor"]))["items"] == []


async def test_feed_needs_supervisor(api_as) -> None:
    agent = await api_as("agent")
    assert (await agent.get("/api/v1/feed")).status == 403


async def test_late_commit_of_an_older_transaction_is_not_skipped(api_as, pool, db_url) -> None:
    """T1 takes its transaction id first but writes and commits after T2: a reader that
    saw T2's row must still get T1's afterwards, and nothing twice."""
    api = await api_as("supervisor")
    t1, t2 = await connect(db_url), await connect(db_url)
    try:
        tx1 = t1.transaction()
        await tx1.start()
        await t1.fetchval("SELECT pg_current_xact_id()")  # T1 is now the oldest running transaction
        async with t2.transaction():
            await _new_call(t2, "late-2")
        first = await _page(api, "0")
        assert first["items"] == []  # T2's row is held back while T1 runs
        await _new_call(t1, "late-1")
        await tx1.commit()
        second = await _page(api, first["cursor"])
        assert [i["data"]["call_uid"] for i in second["items"]] == ["late-1", "late-2"]
        assert (await _page(api, second["cursor"]))["items"] == []
    finally:
        await t1.close()
        await t2.close()


async def _read_sse(resp, count: int) -> list[tuple[str, dict]]:
    events, current = [], {}
    async with asyncio.timeout(10):
        while len(events) < count:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line == "":
                if current.get("event") == "change":
                    events.append((current["id"], json.loads(current["data"])))
                current = {}
            elif not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                current[key] = value.strip()
    return events


async def test_sse_resume_with_last_event_id_no_gap_no_duplicate(api_as, pool) -> None:
    api = await api_as("supervisor")
    for i in range(3):
        await _new_call(pool, f"s{i}")
    resp = await api.get("/api/v1/feed", params={"cursor": "0"}, headers={"Accept": "text/event-stream"})
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    got = await _read_sse(resp, 2)
    resp.close()  # the subscriber drops after two events
    for i in range(3, 6):
        await _new_call(pool, f"s{i}")
    resp = await api.get("/api/v1/feed", headers={"Accept": "text/event-stream", "Last-Event-ID": got[-1][0]})
    got += await _read_sse(resp, 4)
    resp.close()
    assert [e[1]["data"]["call_uid"] for e in got] == [f"s{i}" for i in range(6)]


async def test_websocket_streams_live_changes_and_resumes(api_as, pool) -> None:
    api = await api_as("supervisor")
    ws = await api.client.ws_connect("/api/v1/feed", params={"entities": "call"})
    hello = json.loads((await ws.receive(timeout=10)).data)
    assert hello["type"] == "hello"
    await _new_call(pool, "w1")  # committed after the subscriber connected: woken by NOTIFY
    msg = await ws.receive(timeout=10)
    assert msg.type == WSMsgType.TEXT
    first = json.loads(msg.data)
    assert first["data"]["call_uid"] == "w1"
    await ws.close()
    await _new_call(pool, "w2")
    await _new_call(pool, "w3")
    ws = await api.client.ws_connect("/api/v1/feed", params={"cursor": first["cursor"]})
    await ws.receive(timeout=10)  # hello
    seen = [json.loads((await ws.receive(timeout=10)).data)["data"]["call_uid"] for _ in range(2)]
    await ws.close()
    assert seen == ["w2", "w3"]


async def test_expired_cursor_is_refused(api_as, pool) -> None:
    from hotline.feed.changes import prune

    api = await api_as("supervisor")
    await _new_call(pool, "old")
    first = (await _page(api, "0"))["items"][0]["cursor"]
    await _new_call(pool, "old2")
    await pool.execute("UPDATE change_log SET at = now() - interval '30 days'")
    async with pool.acquire() as conn:
        assert await prune(conn, older_than_days=7, keep_after=None) == 2
    resp = await api.get("/api/v1/feed", params={"cursor": first})
    assert resp.status == 410 and (await resp.json())["error"]["code"] == "cursor_expired"
    assert (await _page(api, "0"))["items"] == []


async def test_a_change_written_through_one_node_reaches_a_subscriber_on_another(api_as, pool, runtime, db_url,
                                                                                 settings, registry) -> None:
    """Two web nodes on one database: the subscriber's node is woken by PostgreSQL NOTIFY."""
    from aiohttp.test_utils import TestClient, TestServer

    from hotline.db import Database
    from hotline.db.pool import create_pool
    from hotline.runtime import Runtime
    from hotline.web import create_app

    api = await api_as("supervisor")  # signs in on node A; the session is valid on every node
    other_pool = await create_pool(db_url, settings, min_size=1, max_size=3)
    node_b = Runtime(settings, registry, Database(pool=other_pool, url=db_url))
    client_b = TestClient(TestServer(create_app(settings, registry, runtime=node_b)))
    await client_b.start_server()
    try:
        cookie = api.client.session.cookie_jar.filter_cookies(api.client.make_url("/"))["hotline_session"].value
        ws = await client_b.ws_connect("/api/v1/feed", params={"entities": "call"},
                                       headers={"Cookie": f"hotline_session={cookie}"})
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "hello"
        await _new_call(pool, "via-node-a")
        change = json.loads((await ws.receive(timeout=10)).data)
        assert change["data"]["call_uid"] == "via-node-a"
        await ws.close()
    finally:
        await client_b.close()
        await node_b.close()
        await other_pool.close()


async def test_one_connection_captures_changes_of_every_table(pool) -> None:
    """The capture function is shared by tables of different shapes on one connection."""
    await pool.execute("INSERT INTO ingest_sources (code, name) VALUES ('s', 's')")
    async with pool.acquire() as conn:
        for _ in range(2):
            await conn.execute("INSERT INTO calls (call_uid, hotline_number) VALUES (gen_random_uuid(), '12345')")
            await conn.execute(
                "INSERT INTO subcenter_calls (source, source_id, version, hotline_number, started_at, data) "
                "VALUES ('s', gen_random_uuid(), 1, '12366', now(), '{}')")
            await conn.execute("INSERT INTO tickets (hotline_number, subject) VALUES ('12345', '测试')")
            await conn.execute("UPDATE calls SET state = 'queued' WHERE state = 'ringing'")
    rows = await pool.fetch("SELECT entity, op, data FROM change_log ORDER BY txid, id")
    assert [(r["entity"], r["op"]) for r in rows][:4] == [
        ("call", "insert"), ("subcenter_call", "insert"), ("ticket", "insert"), ("call", "update")]
    assert all(r["data"]["id"] for r in rows) and len(rows) == 8
    assert {r["entity"]: set(r["data"]) for r in rows}["subcenter_call"] >= {"source_id", "version", "started_at"}
