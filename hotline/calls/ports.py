"""What the call flows need from other modules, behind small interfaces, so tests
can give a double. The defaults are the real modules, which always ship with the
calls: ``hotline.kb.suggest`` and ``hotline.tickets.lookup``.

The tickets module is loaded by name on purpose: tickets depend on calls (a ticket
links its calls through :mod:`hotline.calls.store`, the one writer of ``calls``), so
a static import here would make the package cycle the layer contract forbids. The
port inverts that one dependency.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any, Protocol

import asyncpg


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


class KbModule:
    name = "hotline.kb.suggest"

    def __init__(self, module: Any) -> None:
        self.module = module

    async def suggest(self, runtime: Any, *, hotline_number: str | None, text: str | None, limit: int = 5) -> list[dict[str, Any]]:
        return list(await self.module.suggest(runtime, hotline_number=hotline_number, text=text, limit=limit))


def default_tickets() -> TicketsPort:
    return TicketsModule(importlib.import_module("hotline.tickets.lookup"))


def default_kb() -> KbPort:
    from hotline.kb import suggest

    return KbModule(suggest)
