"""Screen-pop (来电弹屏): what an agent sees the moment a call reaches the seat.

The line the caller dialled (name and merge mode, so the agent knows it was
12333 and not 12345), the caller's number masked, their recent calls and open
tickets, and suggested knowledge articles. The unmasked number is only given by
:func:`reveal_number`, which writes the audit log.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from hotline.auth import User, audit
from hotline.errors import Forbidden, NotFound
from hotline.kb.suggest import suggest
from hotline.phone import mask
from hotline.runtime import Runtime
from hotline.tickets.lookup import open_tickets_for_caller

log = logging.getLogger(__name__)

MODE_NAMES_ZH = {"platform": "12345主线", "merged": "整体并入", "dual": "双号并行", "subcenter": "分中心"}
HISTORY_LIMIT = 10
OPEN_TICKETS_SINCE = timedelta(days=365)
SUGGESTIONS = 5


def line_info(runtime: Runtime, number: str) -> dict[str, Any]:
    line = runtime.registry.get(number)
    if line is None:
        return {"number": number, "name": number, "mode": None, "mode_name": "未知线路"}
    return {
        "number": line.number,
        "name": line.name,
        "department": line.department,
        "unit": line.unit,
        "mode": line.mode.value,
        "mode_name": MODE_NAMES_ZH[line.mode.value],
        "has_expert_pool": bool(line.expert_pool),
        "is_subcenter": line.mode.value == "subcenter",
    }


def subcenters(runtime: Runtime, first: str | None = None) -> list[dict[str, str]]:
    """Sub-centres an agent can transfer to; the call's own line first."""
    items = [{"number": ln.number, "name": ln.name} for ln in runtime.registry if ln.mode.value == "subcenter"]
    return sorted(items, key=lambda i: (i["number"] != first, i["number"]))


async def ticket_summaries(runtime: Runtime, ids: list[int]) -> list[dict[str, Any]]:
    """Short views of tickets for the pop and the expert's inbox."""
    if not ids:
        return []
    from hotline.console.tickets_bridge import summaries

    return await summaries(runtime, ids)


async def build(runtime: Runtime, call_id: int, *, text: str | None = None) -> dict[str, Any]:
    """The screen-pop payload for a call (no unmasked personal data)."""
    pool = runtime.pool
    call = await pool.fetchrow(
        """SELECT id, call_uid, hotline_number, caller_number, caller_kind, caller_name, route,
                  queue, state, started_at, queued_at, answered_at, agent_id, ticket_id,
                  repeat_ticket_id, wait_seconds
             FROM calls WHERE id = $1""",
        call_id,
    )
    if call is None:
        raise NotFound(f"来电 {call_id} 不存在", field="call_id")
    caller = call["caller_number"]
    # history, open tickets and suggestions are independent: ask for them together
    history, open_ids, suggestions = await asyncio.gather(
        _history(runtime, caller, call_id), _open_ticket_ids(runtime, caller, call_id),
        _suggestions(runtime, call["hotline_number"], text, call_id))
    if call["repeat_ticket_id"] and call["repeat_ticket_id"] not in open_ids:
        open_ids.insert(0, call["repeat_ticket_id"])
    return {
        "call": {
            "id": call["id"],
            "hotline_number": call["hotline_number"],
            "caller_masked": mask(caller) if caller else "",
            "caller_known": bool(caller),
            "caller_kind": call["caller_kind"],
            "state": call["state"],
            "route": call["route"],
            "queue": call["queue"],
            "started_at": call["started_at"],
            "queued_at": call["queued_at"],
            "answered_at": call["answered_at"],
            "wait_seconds": call["wait_seconds"],
            "ticket_id": call["ticket_id"],
            "agent_id": call["agent_id"],
        },
        "line": line_info(runtime, call["hotline_number"]),
        "history": history,
        "open_tickets": await ticket_summaries(runtime, open_ids[:10]),
        "suggestions": suggestions,
        "subcenters": subcenters(runtime, call["hotline_number"]),
    }


async def _history(runtime: Runtime, caller: str, call_id: int) -> list[dict[str, Any]]:
    if not caller:
        return []
    rows = await runtime.pool.fetch(
        """SELECT id, started_at, hotline_number, state, ticket_id, talk_seconds
             FROM calls WHERE caller_number = $1 AND id <> $2
            ORDER BY started_at DESC LIMIT $3""",
        caller, call_id, HISTORY_LIMIT,
    )
    return [dict(r) | {"line_name": line_info(runtime, r["hotline_number"])["name"]} for r in rows]


async def _open_ticket_ids(runtime: Runtime, caller: str, call_id: int) -> list[int]:
    if not caller:
        return []
    try:
        async with runtime.pool.acquire() as conn:
            since: datetime = datetime.now(UTC) - OPEN_TICKETS_SINCE
            return list(await open_tickets_for_caller(conn, caller, since=since))
    except Exception:  # a failing lookup must not break the pop
        log.exception("open ticket lookup failed for call %s", call_id)
        return []


async def _suggestions(runtime: Runtime, line: str, text: str | None, call_id: int) -> list[dict[str, Any]]:
    try:
        return list(await suggest(runtime, hotline_number=line, text=text, limit=SUGGESTIONS))
    except Exception:
        log.exception("knowledge suggestions failed for call %s", call_id)
        return []


async def reveal_number(runtime: Runtime, call_id: int, user: User, *, remote_addr: str | None) -> str:
    """The caller's full number, for the agent on the call, the expert it was
    transferred to and supervisors; every reveal is written to the audit log."""
    row = await runtime.pool.fetchrow(
        """SELECT c.caller_number, c.agent_id,
                  EXISTS (SELECT 1 FROM seats s WHERE s.user_id = $2 AND s.current_call_id = c.id) AS on_my_seat,
                  EXISTS (SELECT 1 FROM console_inbox i WHERE i.user_id = $2 AND i.call_id = c.id) AS sent_to_me
             FROM calls c WHERE c.id = $1""",
        call_id, user.id,
    )
    if row is None:
        raise NotFound(f"来电 {call_id} 不存在", field="call_id")
    allowed = (user.has_role("supervisor") or row["agent_id"] == user.id or row["on_my_seat"]
               or (user.has_role("expert") and row["sent_to_me"]))
    if not allowed:
        raise Forbidden("只有接听该来电的话务员、转接到的专家座席或班长可以查看完整号码")
    await audit(runtime.pool, "view_caller_number", user=user, object_type="call", object_id=call_id,
                detail={"reason": "screen_pop"}, remote_addr=remote_addr)
    return str(row["caller_number"])
