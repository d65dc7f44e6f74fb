"""Wake-ups for feed readers on one node: a ``feed.changed`` notification (sent by the
change-log trigger at commit) wakes every waiting reader, which then reads the
change log itself; notifications are hints, the table is the truth."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from prometheus_client import Counter, Gauge

from hotline.events import Topic
from hotline.runtime import Runtime

SUBSCRIBERS = Gauge("hotline_feed_subscribers", "Feed subscribers connected to this node", ["transport"])
DELIVERED = Counter("hotline_feed_changes_delivered_total", "Changes delivered to feed subscribers", ["transport"])
TOPIC = Topic.FEED_CHANGED


class FeedHub:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._started = False
        self._lock = asyncio.Lock()

    async def start(self, runtime: Runtime) -> None:
        async with self._lock:
            if self._started:
                return
            listener = await runtime.events()
            listener.subscribe(TOPIC, self.poke)
            listener.on_reconnect.append(self.poke)
            self._started = True

    def poke(self, *_: Any) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def current(self) -> asyncio.Event:
        """Take this before reading, then :meth:`wait` on it: a poke in between is not lost."""
        return self._event

    @staticmethod
    async def wait(event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
