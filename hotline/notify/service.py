"""The notification worker as a node service (role "workers"), when ``[notify] url`` is
set; the settings are validated at every start (a bad template stops the node)."""

from __future__ import annotations

import asyncio
import contextlib

from hotline.notify import NotifySettings, notify_settings
from hotline.notify.worker import NotifyWorker
from hotline.outbound import public_endpoint
from hotline.runtime import Runtime
from hotline.services import NodeOptions


class NotifyService:
    name = "notify"
    role = "workers"
    order = 75

    def __init__(self, runtime: Runtime, cfg: NotifySettings) -> None:
        self.runtime = runtime
        self.cfg = cfg
        self.stopping = asyncio.Event()
        self.worker: NotifyWorker | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.worker = NotifyWorker(self.runtime.pool, self.cfg, self.runtime.settings.tz)
        self.task = asyncio.create_task(self.worker.run(self.stopping), name="notify-delivery")

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.worker is not None:
            await self.worker.close()

    def describe(self) -> str:
        return f"notifications to {public_endpoint(self.cfg.url)}"


def create_service(runtime: Runtime, options: NodeOptions) -> NotifyService | None:
    cfg = notify_settings(runtime.settings)
    return NotifyService(runtime, cfg) if cfg.enabled else None
