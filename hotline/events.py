"""Cross-node events over PostgreSQL ``LISTEN/NOTIFY``.

A domain action publishes a small event (ids, not documents) inside its own
transaction, so the event is delivered if and only if the change commits; every
node that listens receives it. Consumers (console WebSockets, index updaters)
subscribe in-process to topics.

Payloads must stay small (PostgreSQL caps a notification at 8000 bytes): send
ids and let the consumer read what it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)
CHANNEL = "hotline_events"


class Topic(enum.StrEnum):
    """Every event topic, by name (a topic is still its string on the wire and in SQL:
    ``Topic.CALL_UPDATED == "call.updated"``). tests/test_events.py keeps this list, the
    publishers and the subscribers in step: each published topic has a subscriber in
    the tree or is in :data:`EXTERNAL`."""

    CALL_OFFERED = "call.offered"
    CALL_UPDATED = "call.updated"
    SEAT_CHANGED = "seat.changed"
    TRANSFER_EXPERT = "transfer.expert"
    TRANSFER_SUBCENTER = "transfer.subcenter"
    TICKET_CHANGED = "ticket.changed"
    CONSOLE_EXPERT_RETURNED = "console.expert_returned"
    FEED_CHANGED = "feed.changed"
    KB_CHANGED = "kb.changed"
    KB_FLAGGED = "kb.flagged"
    SLA_ALERT = "sla.alert"
    SLA_ALERTS = "sla.alerts"
    BLOCKLIST_CHANGED = "blocklist.changed"


#: topics published for listeners outside this code base (``LISTEN hotline_events``:
#: a site's monitoring, a wallboard of its own); nothing in the tree needs them
EXTERNAL: dict[Topic, str] = {
    Topic.SLA_ALERT: "one SLA warning or breach (alert id, ticket id): for a site's alerting",
    Topic.SLA_ALERTS: "a scan raised alerts (their count): for a site's alerting",
    Topic.KB_FLAGGED: "an article was flagged as wrong or outdated: for its unit's notification",
}
Handler = Callable[[str, dict[str, Any]], Awaitable[None] | None]


async def publish(conn: asyncpg.Connection | asyncpg.Pool, topic: str, payload: dict[str, Any]) -> None:
    """Queue ``{topic, payload}`` for delivery at commit (immediately outside a transaction)."""
    message = json.dumps({"topic": topic, "payload": payload}, ensure_ascii=False, default=str)
    if len(message.encode()) > 7900:
        raise ValueError(f"event {topic} is too large for NOTIFY ({len(message)} chars): send ids")
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, message)


async def publish_many(conn: asyncpg.Connection | asyncpg.Pool, events: list[tuple[str, dict[str, Any]]]) -> None:
    """:func:`publish` for several events in one round trip (same order, same delivery)."""
    if not events:
        return
    messages = []
    for topic, payload in events:
        message = json.dumps({"topic": topic, "payload": payload}, ensure_ascii=False, default=str)
        if len(message.encode()) > 7900:
            raise ValueError(f"event {topic} is too large for NOTIFY ({len(message)} chars): send ids")
        messages.append(message)
    await conn.execute("SELECT pg_notify($1, m) FROM unnest($2::text[]) WITH ORDINALITY AS t(m, i) ORDER BY i",
                       CHANNEL, messages)


class EventListener:
    """One LISTEN connection per node, fanning events out to in-process handlers.
    Reconnects after a lost connection; callers that need completeness after a gap
    must catch up from the database (events are hints, the tables are the truth)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.reconnects = 0
        self.on_reconnect: list[Callable[[], Awaitable[None] | None]] = []

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Subscribe to a topic ('*' for all); returns an unsubscribe function."""
        self._handlers[topic].append(handler)
        return lambda: self._handlers[topic].remove(handler) if handler in self._handlers[topic] else None

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._watch(), name="event-listener")

    async def _connect(self) -> None:
        self._conn = await asyncpg.connect(self.url, server_settings={"application_name": "hotline/events"})
        await self._conn.add_listener(CHANNEL, self._on_notify)

    def _on_notify(self, conn: Any, pid: int, channel: str, message: str) -> None:
        try:
            event = json.loads(message)
            topic, payload = event["topic"], event["payload"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed event %r", message[:200])
            return
        for handler in [*self._handlers.get(topic, ()), *self._handlers.get("*", ())]:
            try:
                result = handler(topic, payload)
                if asyncio.iscoroutine(result):
                    asyncio.ensure_future(result)
            except Exception:
                log.exception("event handler for %s failed", topic)

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(1.0)
            if self._conn is not None and not self._conn.is_closed():
                continue
            try:
                await self._connect()
                self.reconnects += 1
                log.info("event listener reconnected")
                for callback in self.on_reconnect:
                    result = callback()
                    if asyncio.iscoroutine(result):
                        await result
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("event listener cannot reconnect yet: %s", exc)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
