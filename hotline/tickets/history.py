"""The ticket history (append-only; the table's trigger refuses UPDATE and DELETE)
and the ``ticket.changed`` event that goes with every change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from hotline.db import transaction  # noqa: F401  (the one helper, re-exported: joins the caller's transaction)
from hotline.events import Topic, publish

_UNSET: Any = object()


async def append_event(
    conn: asyncpg.Connection,
    ticket_id: int,
    *,
    action: str,
    from_state: str | None,
    to_state: str,
    actor_id: int | None = None,
    actor_name: str = "",
    note: str = "",
    leg_id: int | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
    unit_code: str | None = _UNSET,
) -> int:
    """Append one history event and publish ``ticket.changed`` in the same transaction."""
    event_id = await conn.fetchval(
        """INSERT INTO ticket_events (ticket_id, leg_id, at, actor_id, actor_name, action,
                                      from_state, to_state, note, detail)
           VALUES ($1, $2, coalesce($3, now()), $4, $5, $6, $7, $8, $9, $10) RETURNING id""",
        ticket_id, leg_id, at, actor_id, actor_name, action, from_state, to_state, note or "",
        detail or {},
    )
    if unit_code is _UNSET:
        unit_code = await conn.fetchval("SELECT lead_unit_code FROM tickets WHERE id = $1", ticket_id)
    await publish(conn, Topic.TICKET_CHANGED, {"ticket_id": ticket_id, "state": to_state, "unit_code": unit_code})
    return int(event_id)
