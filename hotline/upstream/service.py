"""The upstream worker as a node service (role "workers"), when ``[upstream] url`` is set.
Several nodes may run it: one pushes at a time (PostgreSQL advisory lock)."""

from __future__ import annotations

import asyncio
import contextlib

from hotline.events import Topic
from hotline.outbound import public_endpoint
from hotline.runtime import Runtime
from hotline.services import NodeOptions
from hotline.upstream.config import UpstreamSettings, upstream_settings
from hotline.upstream.worker import UpstreamWorker


class UpstreamService:
    name = "upstream"
    role = "workers"
    order = 70

    def __init__(self, runtime: Runtime, cfg: UpstreamSettings) -> None:
        self.runtime = runtime
        self.cfg = cfg
        self.stopping = asyncio.Event()
        self.wake = asyncio.Event()
        self.worker: UpstreamWorker | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listener = await self.runtime.events()
        listener.subscribe(Topic.FEED_CHANGED, lambda *_: self.wake.set())
        self.worker = UpstreamWorker(self.runtime.pool, self.cfg, wake=self.wake)
        self.task = asyncio.create_task(self.worker.run(self.stopping), name="upstream-push")

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.worker is not None:
            await self.worker.close()

    def describe(self) -> str:
        return f"upstream push to {public_endpoint(self.cfg.url)}"


def create_service(runtime: Runtime, options: NodeOptions) -> UpstreamService | None:
    cfg = upstream_settings(runtime.settings)
    return UpstreamService(runtime, cfg) if cfg.enabled else None
