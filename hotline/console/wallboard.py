"""The supervisor's wallboard (大屏), computed from ``calls`` and ``seats``.

Denominators follow the norms: offered = calls that reached the queue today
(``queued_at`` set when Asterisk reports the caller joined a queue: AMI
``QueueCallerJoin`` live, queue_log ``ENTERQUEUE`` after the fact), connection rate = answered / offered, service level =
answered within 15 s / offered (not / answered).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from hotline.console.seats import STATE_NAMES_ZH
from hotline.registry import Registry

SERVICE_LEVEL_SECONDS = 15


async def snapshot(conn: asyncpg.Connection | asyncpg.Pool, registry: Registry, timezone: str) -> dict[str, Any]:
    """One consistent picture of now: queues, lines, seats and today's figures."""
    waiting = await conn.fetch(
        # waiting = in an Asterisk queue now (joined, not yet answered or gone): a caller
        # still hearing the announcement is not waiting in a queue yet
        """SELECT coalesce(queue, '') AS queue, hotline_number, count(*) AS waiting,
                  min(queued_at) AS oldest
             FROM calls WHERE state = 'queued' AND queued_at IS NOT NULL
            GROUP BY 1, 2 ORDER BY 3 DESC, 2"""
    )
    seats = await conn.fetch(
        """SELECT coalesce(s.state, 'offline') AS state, count(*) AS n
             FROM users u LEFT JOIN seats s ON s.user_id = u.id
            WHERE u.active AND 'agent' = ANY (u.roles)
            GROUP BY 1"""
    )
    today = await conn.fetchrow(
        """SELECT count(*) AS offered,
                  count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
                  count(*) FILTER (WHERE answered_at IS NOT NULL
                                     AND coalesce(wait_seconds, extract(epoch FROM answered_at - queued_at))
                                         <= $2) AS within_sl,
                  count(*) FILTER (WHERE state = 'abandoned') AS abandoned,
                  count(*) FILTER (WHERE state IN ('ringing', 'queued', 'answered', 'transferred')) AS active
             FROM calls
            WHERE queued_at IS NOT NULL
              AND started_at >= (date_trunc('day', now() AT TIME ZONE $1) AT TIME ZONE $1)""",
        timezone, SERVICE_LEVEL_SECONDS,
    )
    assert today is not None
    now: datetime = await conn.fetchval("SELECT now()")
    by_queue: dict[str, dict[str, Any]] = {}
    lines = []
    for row in waiting:
        line = registry.get(row["hotline_number"])
        lines.append({
            "hotline_number": row["hotline_number"],
            "name": line.name if line else row["hotline_number"],
            "mode": line.mode.value if line else None,
            "queue": row["queue"],
            "waiting": row["waiting"],
            "oldest": row["oldest"],
        })
        q = by_queue.setdefault(row["queue"], {"queue": row["queue"], "waiting": 0, "oldest": row["oldest"]})
        q["waiting"] += row["waiting"]
        q["oldest"] = min(q["oldest"], row["oldest"])
    oldest = min((q["oldest"] for q in by_queue.values()), default=None)
    agents = {state: 0 for state in STATE_NAMES_ZH}
    for row in seats:
        agents[row["state"]] = row["n"]
    offered = today["offered"]
    return {
        "at": now,
        "queues": sorted(by_queue.values(), key=lambda q: (-q["waiting"], q["queue"])),
        "lines": lines,
        "waiting_total": sum(q["waiting"] for q in by_queue.values()),
        "oldest_queued_at": oldest,
        "longest_wait_seconds": round((now - oldest).total_seconds()) if oldest else 0,
        "agents": agents,
        "today": {
            "offered": offered,
            "answered": today["answered"],
            "abandoned": today["abandoned"],
            "active": today["active"],
            "within_service_level": today["within_sl"],
            "connection_rate": round(today["answered"] / offered, 4) if offered else None,
            "service_level": round(today["within_sl"] / offered, 4) if offered else None,
            "service_level_seconds": SERVICE_LEVEL_SECONDS,
        },
    }
