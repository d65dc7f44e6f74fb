from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from hotline.tickets.lookup import create_callback_ticket, open_tickets_for_caller


async def _call(pool: asyncpg.Pool, uid: str, caller: str) -> int:
    return await pool.fetchval(
        "INSERT INTO calls (call_uid, hotline_number, caller_number) VALUES ($1, '12345', $2) RETURNING id",
        uid, caller,
    )


async def test_callback_ticket_links_the_call_and_is_found_for_the_caller(pool: asyncpg.Pool) -> None:
    call_id = await _call(pool, "u1", "13812345678")
    since = datetime.now(UTC) - timedelta(days=30)
    async with pool.acquire() as conn:
        tid = await create_callback_ticket(conn, call_id=call_id, hotline_number="12345",
                                           caller_number="+8613812345678", note="请回电")
        again = await create_callback_ticket(conn, call_id=call_id, hotline_number="12345",
                                             caller_number="13812345678", note="请回电")
        assert again == tid
        # every normalised form of the number finds it
        assert await open_tickets_for_caller(conn, "013812345678", since=since) == [tid]
        assert await open_tickets_for_caller(conn, "anonymous", since=since) == []
        second = await create_callback_ticket(conn, call_id=await _call(pool, "u2", "13812345678"),
                                              hotline_number="12345", caller_number="13812345678", note="")
        assert await open_tickets_for_caller(conn, "13812345678", since=since) == [second, tid]
        assert await open_tickets_for_caller(conn, "13812345678", since=datetime.now(UTC)
                                             + timedelta(minutes=1)) == []
    row = await pool.fetchrow("SELECT state, source, caller_number, facts FROM tickets WHERE id = $1", tid)
    assert dict(row) == {"state": "intake", "source": "callback", "caller_number": "13812345678", "facts": "请回电"}
    assert await pool.fetchval("SELECT ticket_id FROM calls WHERE id = $1", call_id) == tid
    history = await pool.fetch("SELECT action, from_state, to_state FROM ticket_events WHERE ticket_id = $1", tid)
    assert [tuple(r) for r in history] == [("create", None, "intake")]


async def test_closed_tickets_are_not_open(pool: asyncpg.Pool) -> None:
    call_id = await _call(pool, "u3", "13900001111")
    async with pool.acquire() as conn:
        tid = await create_callback_ticket(conn, call_id=call_id, hotline_number="12345",
                                           caller_number="13900001111", note="")
        await conn.execute("UPDATE tickets SET state = 'closed', closed_at = now() WHERE id = $1", tid)
        assert await open_tickets_for_caller(conn, "13900001111", since=datetime(2000, 1, 1, tzinfo=UTC)) == []


async def test_history_is_append_only(pool: asyncpg.Pool) -> None:
    call_id = await _call(pool, "u4", "13900002222")
    async with pool.acquire() as conn:
        tid = await create_callback_ticket(conn, call_id=call_id, hotline_number="12345",
                                           caller_number="13900002222", note="")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE ticket_events SET note = 'x' WHERE ticket_id = $1", tid)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM ticket_events WHERE ticket_id = $1", tid)
