"""What the call flows need from other modules, behind small interfaces.

Tickets (issue 4) and the knowledge base (issue 5) are separate modules; the
flows call them through these ports so that a node without one of them still
routes calls, and tests can give a double. The defaults use the real modules
(``hotline.tickets.lookup``, ``hotline.kb.suggest``) when they are installed.
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from typing import Any, Protocol

import asyncpg

log = logging.getLogger("hotline.calls")


class TicketsPort(Protocol):
    name: str

    async def open_tickets_for_caller(
        self, conn: asyncpg.Connection, caller_number: str, *, since: datetime
    ) -> list[int]: ...

    async def create_callback_ticket(
        self, conn: asyncpg.Connection, *, call_id: int, hotline_number: str, caller_number: str,
        note: str, actor_user_id: int | None = None,
    ) -> int | None: ...


class KbPort(Protocol):
    name: str

    async def suggest(
        self, runtime: Any, *, hotline_number: str | None, text: str | None, limit: int = 5
    ) -> list[dict[str, Any]]: ...


class TicketsModule:
    """The tickets engineer's ``hotline.tickets.lookup`` (contract in the cross-team contracts)."""

    name = "hotline.tickets.lookup"

    def __init__(self, module: Any) -> None:
        self.module = module

    async def open_tickets_for_caller(self, conn: asyncpg.Connection, caller_number: str, *, since: datetime) -> list[int]:
        return list(await self.module.open_tickets_for_caller(conn, caller_number, since=since))

    async def create_callback_ticket(
        self, conn: asyncpg.Connection, *, call_id: int, hotline_number: str, caller_number: str,
        note: str, actor_user_id: int | None = None,
    ) -> int | None:
        return int(await self.module.create_callback_ticket(
            conn, call_id=call_id, hotline_number=hotline_number, caller_number=caller_number,
            note=note, actor_user_id=actor_user_id,
        ))


class CallsTableTickets:
    """Fallback without the tickets module: a repeat caller is one whose recent call
    was linked to a ticket (``calls.ticket_id``); callbacks cannot be created."""

    name = "calls-table fallback"

    async def open_tickets_for_caller(self, conn: asyncpg.Connection, caller_number: str, *, since: datetime) -> list[int]:
        if not caller_number:
            return []
        rows = await conn.fetch(
            """SELECT DISTINCT ON (ticket_id) ticket_id, started_at FROM calls
                WHERE caller_number = $1 AND ticket_id IS NOT NULL AND started_at >= $2
                ORDER BY ticket_id, started_at DESC""",
            caller_number, since,
        )
        return [r["ticket_id"] for r in sorted(rows, key=lambda r: r["started_at"], reverse=True)]

    async def create_callback_ticket(self, conn: asyncpg.Connection, **kwargs: Any) -> int | None:
        return None


class KbModule:
    name = "hotline.kb.suggest"

    def __init__(self, module: Any) -> None:
        self.module = module

    async def suggest(self, runtime: Any, *, hotline_number: str | None, text: str | None, limit: int = 5) -> list[dict[str, Any]]:
        return list(await self.module.suggest(runtime, hotline_number=hotline_number, text=text, limit=limit))


class NoKb:
    name = "none"

    async def suggest(self, runtime: Any, *, hotline_number: str | None, text: str | None, limit: int = 5) -> list[dict[str, Any]]:
        return []


def _load(module_name: str) -> Any | None:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        log.info("%s not available (%s); using the fallback", module_name, exc)
        return None


def default_tickets() -> TicketsPort:
    module = _load("hotline.tickets.lookup")
    if module is not None and hasattr(module, "open_tickets_for_caller"):
        return TicketsModule(module)
    return CallsTableTickets()


def default_kb() -> KbPort:
    module = _load("hotline.kb.suggest")
    if module is not None and hasattr(module, "suggest"):
        return KbModule(module)
    return NoKb()
