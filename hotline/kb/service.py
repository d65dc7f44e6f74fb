"""The knowledge-base index as a node service: at start, check this node's index
against PostgreSQL (rebuild or catch up), listen for changes, and poll the change
log now and then as a safety net. Runs on nodes that search (web or FastAGI)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from hotline.kb.engine import KnowledgeBase, close_kb, get_kb
from hotline.kb.settings import KbSettings
from hotline.runtime import Runtime
from hotline.services import NodeOptions

log = logging.getLogger(__name__)


class KbIndexService:
    name = "kb-index"
    order = 40  # before the web and FastAGI servers take requests

    def __init__(self, runtime: Runtime, role: str) -> None:
        self.runtime = runtime
        self.role = role
        self.kb: KnowledgeBase | None = None
        self._poller: asyncio.Task[None] | None = None
        self.outcome = ""

    async def start(self) -> None:
        self.kb = await get_kb(self.runtime)
        self.outcome = (f"rebuilt ({self.kb.stats.last_rebuild_reason})" if self.kb.stats.rebuilds
                        else f"up to date at change {self.kb.cursor}")
        self._poller = asyncio.create_task(self._poll(), name="kb-index-poll")

    async def _poll(self) -> None:
        interval = KbSettings.from_settings(self.runtime.settings).poll_seconds
        while True:
            await asyncio.sleep(interval)
            if self.kb is None:
                return
            try:
                await self.kb.sync()
            except Exception:
                log.exception("knowledge-base poll failed; retrying in %s s", interval)

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await close_kb(self.runtime)

    def describe(self) -> str:
        path = self.kb.index.path if self.kb else "?"
        return f"knowledge-base index {path}: {self.outcome}"


def create_service(runtime: Runtime, options: NodeOptions) -> KbIndexService | None:
    if options.web:
        return KbIndexService(runtime, "web")
    if options.agi:
        return KbIndexService(runtime, "agi")
    return None
