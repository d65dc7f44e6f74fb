"""What the call flow asks of tickets (contract with telephony, see the cross-team
contracts): a caller's open tickets (repeat callers) and a callback request left
in the IVR. Both take a connection so the caller decides the transaction."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from hotline.phone import normalize
from hotline.tickets.intake import NewTicket, create_ticket
from hotline.tickets.model import OPEN_STATES


async def open_tickets_for_caller(conn: asyncpg.Connection, caller_number: str, *, since: datetime) -> list[int]:
    """Ids of open tickets of that caller number (normalised here too) created since
    ``since``, most recent first. Anonymous numbers have none."""
    number = normalize(caller_number).number
    if not number:
        return []
    rows = await conn.fetch(
        """SELECT id FROM tickets
            WHERE caller_number = $1 AND created_at >= $2 AND state = ANY($3::text[])
            ORDER BY created_at DESC, id DESC""",
        number, since, sorted(OPEN_STATES),
    )
    return [r["id"] for r in rows]


async def create_callback_ticket(
    conn: asyncpg.Connection,
    *,
    call_id: int,
    hotline_number: str,
    caller_number: str,
    note: str,
    actor_user_id: int | None = None,
) -> int:
    """A ticket in ``intake`` asking the centre to call the citizen back, linked to
    the call. Idempotent per call: a second request for the same call returns the
    ticket already made."""
    async with conn.transaction():
        existing = await conn.fetchval("SELECT id FROM tickets WHERE callback_call_id = $1", call_id)
        if existing is not None:
            return int(existing)
        return await create_ticket(
            conn,
            NewTicket(
                hotline_number=hotline_number,
                subject="来电回拨请求",
                facts=note or "",
                caller_number=caller_number,
                kind="help",
                channel="phone",
                source="callback",
                call_ids=[call_id],
                callback_call_id=call_id,
            ),
            actor_id=actor_user_id,
        )
