"""Readable ticket numbers (工单流水号): prefix + local day + daily sequence, assigned by
the database to every ticket, never changed, never reused (after a rollback or a
deletion), backfilled for existing tickets, shown by the API and accepted wherever a
ticket is looked up."""

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import pytest
from tickets_support import LEAD, OTHER, Cast, new_ticket

from hotline.calendar.core import SHANGHAI
from hotline.config import PROJECT_ROOT
from hotline.db.migrations import migrate
from hotline.numbering import NumberingSettings, configure, prepare, resolve


async def _number(pool: asyncpg.Pool, ticket_id: int) -> str:
    return await pool.fetchval("SELECT number FROM tickets WHERE id = $1", ticket_id)


async def test_numbers_count_per_local_day(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        a = await new_ticket(conn, cast, at=datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI))
        b = await new_ticket(conn, cast, at=datetime(2026, 12, 1, 23, 59, tzinfo=SHANGHAI))
        # 16:00 UTC is already the next day in Shanghai: a new day, a new sequence
        c = await new_ticket(conn, cast, at=datetime(2026, 12, 1, 16, 0, tzinfo=UTC))
    assert [await _number(pool, t) for t in (a, b, c)] == ["ZS2612010001", "ZS2612010002", "ZS2612020001"]


async def test_a_number_is_never_reused_after_a_rollback_or_a_deletion(pool: asyncpg.Pool, cast: Cast) -> None:
    day = datetime(2026, 12, 3, 9, 0, tzinfo=SHANGHAI)
    await prepare(pool, date(2026, 12, 3), 1)  # what the service and the daily job do ahead of the day
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                gone = await new_ticket(conn, cast, at=day)
                assert await conn.fetchval("SELECT number FROM tickets WHERE id = $1", gone) == "ZS2612030001"
                raise RuntimeError("the intake fails after the number was handed out")
        kept = await new_ticket(conn, cast, at=day)
        # a ticket row removed outright (no history yet) does not give its number back
        deleted = await conn.fetchval(
            "INSERT INTO tickets (hotline_number, subject, created_at) VALUES ('12345', 'x', $1) RETURNING number", day)
        await conn.execute("DELETE FROM tickets WHERE number = $1", deleted)
        after = await new_ticket(conn, cast, at=day)
    assert await _number(pool, kept) == "ZS2612030002"
    assert deleted == "ZS2612030003"
    assert await _number(pool, after) == "ZS2612030004"


async def test_the_number_cannot_be_chosen_or_changed(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        chosen = await conn.fetchval(
            "INSERT INTO tickets (hotline_number, subject, number, created_at) VALUES ('12345', 'x', 'ZS2612010999', $1)"
            " RETURNING number", datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI))
        assert chosen == "ZS2612010001"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE tickets SET number = 'ZS2612019999' WHERE number = $1", chosen)


async def test_the_prefix_is_configurable(pool: asyncpg.Pool, cast: Cast) -> None:
    await configure(pool, NumberingSettings(prefix="NB", digits=5), "Asia/Shanghai")
    async with pool.acquire() as conn:
        t = await new_ticket(conn, cast, at=datetime(2026, 12, 5, 10, 0, tzinfo=SHANGHAI))
        assert await resolve(conn, " nb26120500001 ") == t
        assert await resolve(conn, str(t)) == t
        assert await resolve(conn, "NB26120599999") is None
        assert await resolve(conn, "no such thing") is None
    assert await _number(pool, t) == "NB26120500001"


async def test_existing_tickets_are_numbered_by_the_migration(cluster, tmp_path: Path) -> None:  # noqa: ANN001
    name = f"hotline_numbers_{uuid.uuid4().hex[:8]}"
    await cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    before, everything = tmp_path / "before", PROJECT_ROOT / "migrations"
    before.mkdir()
    for src in everything.glob("*.sql"):
        if src.name < "0080":
            (before / src.name).write_bytes(src.read_bytes())
    conn = await asyncpg.connect(cluster.url(name))
    try:
        await migrate(conn, before)
        await conn.execute("INSERT INTO hotlines (number, name, department, mode, queue, skill) "
                           "VALUES ('12345', '12345', '市政府', 'platform', 'q', 's')")
        for at in (datetime(2026, 1, 2, 9, tzinfo=SHANGHAI), datetime(2026, 1, 1, 23, tzinfo=SHANGHAI),
                   datetime(2026, 1, 2, 10, tzinfo=SHANGHAI)):
            await conn.execute("INSERT INTO tickets (hotline_number, subject, created_at) VALUES ('12345', 'x', $1)",
                               at)
        await migrate(conn, everything)
        numbers = [r["number"] for r in await conn.fetch("SELECT number FROM tickets ORDER BY id")]
        assert numbers == ["ZS2601020001", "ZS2601010001", "ZS2601020002"]
        # and the day's sequence continues after the backfilled ones
        new = await conn.fetchval("INSERT INTO tickets (hotline_number, subject, created_at) VALUES ('12345', 'y', $1) "
                                  "RETURNING number", datetime(2026, 1, 2, 11, tzinfo=SHANGHAI))
        assert new == "ZS2601020003"
    finally:
        await conn.close()
        await cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_the_api_shows_and_accepts_the_number(api_as, pool: asyncpg.Pool, cast: Cast) -> None:  # noqa: ANN001
    agent = await api_as("agent")
    resp = await agent.post("/api/v1/tickets", json={
        "hotline_number": "12345", "subject": "路灯不亮", "caller_number": "13800002222", "category_code": "0201",
        "dispatch": {"unit_code": LEAD}})
    assert resp.status == 201, await resp.text()
    ticket = (await resp.json())["ticket"]
    number = ticket["number"]
    assert number.startswith("ZS") and len(number) == 12
    listed = (await (await agent.get("/api/v1/tickets")).json())["items"]
    assert [t["number"] for t in listed if t["id"] == ticket["id"]] == [number]
    # detail, history and actions by number (lower case typed by a person is fine)
    for path in (f"/api/v1/tickets/{number}", f"/api/v1/tickets/{number.lower()}"):
        resp = await agent.get(path)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["ticket"]["id"] == ticket["id"]
    history = await agent.get(f"/api/v1/tickets/{number}/history")
    assert [e["action"] for e in (await history.json())["items"]] == ["create", "dispatch"]
    plan = await (await agent.get(f"/api/v1/tickets/{number}/callback-plan")).json()
    assert [c["ticket_number"] for c in plan["callers"]] == [number]
    acted = await agent.post(f"/api/v1/tickets/{number}/actions/urge", json={"message": "市民催促"})
    assert acted.status == 200, await acted.text()
    assert (await acted.json())["ticket"]["number"] == number
    # a unit that has no leg on the ticket cannot learn that the number exists
    other = await api_as("liaison", unit_code=OTHER)
    for path in (f"/api/v1/tickets/{number}", "/api/v1/tickets/ZS2001010001"):
        resp = await other.get(path)
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
