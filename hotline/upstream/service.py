"""The upstream worker as a node service (role "workers"), when ``[upstream] url`` is set.
Several nodes may run it: one pushes at a time (PostgreSQL advisory lock)."""

from __future__ import annotations

import asyncio

from hotline.events import Topic
from hotline.outbound import DeliveryService, public_endpoint
from hotline.runtime import Runtime
from hotline.services import NodeOptions
from hotline.upstream.config import UpstreamSettings, upstream_settings
from hotline.upstream.worker import UpstreamWorker


class UpstreamService(DeliveryService):
    name = "upstream"
    order = 70

    def __init__(self, runtime: Runtime, cfg: UpstreamSettings) -> None:
        super().__init__()
        self.runtime = runtime
        self.cfg = cfg
        self.wake = asyncio.Event()

    async def start(self) -> None:
        listener = await self.runtime.events()
        listener.subscribe(Topic.FEED_CHANGED, lambda *_: self.wake.set())
        self.launch(UpstreamWorker(self.runtime.pool, self.cfg, wake=self.wake), "upstream-push")

    def describe(self) -> str:
        return f"upstream push to {public_endpoint(self.cfg.url)}"


def create_service(runtime: Runtime, options: NodeOptions) -> UpstreamService | None:
    cfg = upstream_settings(runtime.settings)
    return UpstreamService(runtime, cfg) if cfg.enabled else None
