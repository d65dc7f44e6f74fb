"""Reading call records for the API (masked by default)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from hotline.masking import mask, mask_name

_LIST_COLUMNS = (
    "id, call_uid, source, hotline_number, caller_number, caller_kind, route, queue, skill, state, "
    "disposition, started_at, answered_at, ended_at, wait_seconds, talk_seconds, agent_id, answered_by, "
    "ticket_id, repeat_ticket_id"
)


def call_json(row: asyncpg.Record | dict[str, Any], *, unmasked: bool = False) -> dict[str, Any]:
    data = dict(row)
    number = data.get("caller_number") or ""
    data["caller_number"] = number if unmasked else mask(number)
    data["caller_masked"] = not unmasked and data["caller_number"] != number
    if not unmasked:
        data.pop("caller_raw", None)
        if data.get("caller_name"):
            data["caller_name"] = mask_name(data["caller_name"])
    return data


async def get_call(conn: asyncpg.Connection | asyncpg.Pool, call_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM calls WHERE id = $1", call_id)


async def transfer_attempts(conn: asyncpg.Connection | asyncpg.Pool, call_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, kind, hotline_number, target, expert_user_id, ticket_id, outcome, reason,
                  requested_by, via, channel_moved, created_at, finished_at
             FROM transfer_attempts WHERE call_id = $1 ORDER BY created_at, id""",
        call_id,
    )
    return [dict(r) for r in rows]


async def list_calls(
    conn: asyncpg.Connection | asyncpg.Pool, *, hotline_number: str | None = None, state: str | None = None,
    route: str | None = None, agent_id: int | None = None, caller_number: str | None = None,
    since: datetime | None = None, until: datetime | None = None, limit: int = 50, offset: int = 0,
    caller_pattern: str | None = None,
) -> tuple[list[asyncpg.Record], int]:
    """``caller_number`` matches exactly; ``caller_pattern`` is a LIKE pattern (a masked number)."""
    where = """($1::text IS NULL OR hotline_number = $1) AND ($2::text IS NULL OR state = $2)
               AND ($3::text IS NULL OR route = $3) AND ($4::bigint IS NULL OR agent_id = $4)
               AND ($5::text IS NULL OR caller_number = $5)
               AND ($6::timestamptz IS NULL OR started_at >= $6) AND ($7::timestamptz IS NULL OR started_at < $7)
               AND ($8::text IS NULL OR caller_number LIKE $8)"""
    args = (hotline_number, state, route, agent_id, caller_number, since, until, caller_pattern)
    rows = await conn.fetch(
        f"SELECT {_LIST_COLUMNS} FROM calls WHERE {where} ORDER BY started_at DESC, id DESC "  # noqa: S608
        "LIMIT $9 OFFSET $10",
        *args, limit, offset,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM calls WHERE {where}", *args)  # noqa: S608
    return list(rows), int(total)


async def is_on_call(conn: asyncpg.Connection | asyncpg.Pool, call_id: int, user_id: int) -> bool | None:
    """Whether the user is on the call: the agent who answered it, the seat it is on,
    or an expert it was transferred to. None when there is no such call."""
    return await conn.fetchval(
        """SELECT c.agent_id IS NOT DISTINCT FROM $2
               OR EXISTS (SELECT 1 FROM seats s WHERE s.user_id = $2 AND s.current_call_id = c.id)
               OR EXISTS (SELECT 1 FROM transfer_attempts t WHERE t.call_id = c.id AND t.expert_user_id = $2)
               OR EXISTS (SELECT 1 FROM console_inbox i WHERE i.call_id = c.id AND i.user_id = $2)
             FROM calls c WHERE c.id = $1""",
        call_id, user_id,
    )
