"""Seat state (座席状态) of agents and expert seats, kept in the ``seats`` table.

One table of allowed changes decides what a person may do from the console;
``on_call`` is entered when a call reaches the seat (``call.offered``), not by a
click. Every change publishes ``seat.changed`` so the wallboard follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from hotline.errors import Conflict, ValidationError
from hotline.events import publish

STATES = ("offline", "ready", "on_call", "after_call", "break")
STATE_NAMES_ZH = {
    "offline": "离线",
    "ready": "空闲",
    "on_call": "通话中",
    "after_call": "话后处理",
    "break": "小休",
}
BREAK_REASONS = ("用餐", "休息", "培训", "会议", "其他")

#: state a person may choose from the console, from each state
_MANUAL: dict[str, frozenset[str]] = {
    "offline": frozenset({"ready", "break"}),
    "ready": frozenset({"break", "offline"}),
    "on_call": frozenset({"after_call"}),
    "after_call": frozenset({"ready", "break", "offline"}),
    "break": frozenset({"ready", "offline"}),
}


@dataclass(frozen=True, slots=True)
class Seat:
    user_id: int
    state: str
    reason: str | None
    since: datetime
    current_call_id: int | None
    interface: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "state": self.state,
            "state_name": STATE_NAMES_ZH[self.state],
            "reason": self.reason,
            "since": self.since,
            "current_call_id": self.current_call_id,
            "interface": self.interface,
        }


_COLS = "user_id, state, reason, since, current_call_id, interface"


def _seat(row: Any) -> Seat:
    return Seat(row["user_id"], row["state"], row["reason"], row["since"],
                row["current_call_id"], row["interface"])


async def get_seat(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> Seat:
    """The person's seat; a first visit creates it as ``offline``."""
    row = await conn.fetchrow(
        f"""INSERT INTO seats (user_id) VALUES ($1)
            ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
            RETURNING {_COLS}""",  # noqa: S608
        user_id,
    )
    assert row is not None
    return _seat(row)


async def set_state(
    pool: asyncpg.Pool, user_id: int, state: str, *, reason: str | None = None
) -> Seat:
    """Change one's own seat state by hand (ready, break with a reason, after-call
    work, offline). Refuses changes the table does not allow (409)."""
    if state not in STATES:
        raise ValidationError(f"未知的座席状态 {state!r}，可选：{'、'.join(STATES)}",
                              field="state", value=state)
    if state == "break":
        if not reason or reason not in BREAK_REASONS:
            raise ValidationError(f"小休需要选择原因：{'、'.join(BREAK_REASONS)}",
                                  field="reason", value=reason)
    else:
        reason = None
    async with pool.acquire() as conn, conn.transaction():
        await get_seat(conn, user_id)
        row = await conn.fetchrow(f"SELECT {_COLS} FROM seats WHERE user_id = $1 FOR UPDATE", user_id)  # noqa: S608
        current = _seat(row)
        if state == current.state and reason == current.reason:
            return current
        if state not in _MANUAL[current.state] and not (state == "break" and current.state == "break"):
            raise Conflict(
                f"座席状态不能从「{STATE_NAMES_ZH[current.state]}」手动切换为「{STATE_NAMES_ZH[state]}」",
                field="state", current=current.state,
            )
        row = await conn.fetchrow(
            f"""UPDATE seats SET state = $2, reason = $3, since = now(), updated_at = now(),
                       current_call_id = CASE WHEN $2 = 'after_call' THEN current_call_id END
                 WHERE user_id = $1 RETURNING {_COLS}""",  # noqa: S608
            user_id, state, reason,
        )
        await publish(conn, "seat.changed", {"user_id": user_id, "state": state})
    return _seat(row)


async def mark_on_call(pool: asyncpg.Pool, user_id: int, call_id: int) -> bool:
    """Put the seat on the call that reached it. Idempotent (every web node hears the
    same ``call.offered``); returns True when this call changed the row."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO seats (user_id, state, since, current_call_id)
               VALUES ($1, 'on_call', now(), $2)
               ON CONFLICT (user_id) DO UPDATE
                     SET state = 'on_call', reason = NULL, since = now(), updated_at = now(),
                         current_call_id = EXCLUDED.current_call_id
                   WHERE seats.current_call_id IS DISTINCT FROM EXCLUDED.current_call_id
                      OR seats.state <> 'on_call'
               RETURNING user_id""",
            user_id, call_id,
        )
        if row is not None:
            await publish(conn, "seat.changed", {"user_id": user_id, "state": "on_call"})
    return row is not None


async def list_seats(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    """Every agent and expert seat with its person, for the supervisor."""
    rows = await conn.fetch(
        """SELECT u.id AS user_id, u.username, u.display_name, u.roles, u.hotline_number,
                  coalesce(s.state, 'offline') AS state, s.reason, s.since, s.current_call_id
             FROM users u LEFT JOIN seats s ON s.user_id = u.id
            WHERE u.active AND u.roles && ARRAY['agent', 'expert']
            ORDER BY u.username"""
    )
    return [dict(r) | {"state_name": STATE_NAMES_ZH[r["state"]]} for r in rows]
