"""The notification worker as a node service (role "workers"), when ``[notify] url`` is
set; the settings are validated at every start (a bad template stops the node)."""

from __future__ import annotations

from hotline.notify import NotifySettings, notify_settings
from hotline.notify.worker import NotifyWorker
from hotline.outbound import DeliveryService, public_endpoint
from hotline.runtime import Runtime
from hotline.services import NodeOptions


class NotifyService(DeliveryService):
    name = "notify"
    order = 75

    def __init__(self, runtime: Runtime, cfg: NotifySettings) -> None:
        super().__init__()
        self.runtime = runtime
        self.cfg = cfg

    async def start(self) -> None:
        self.launch(NotifyWorker(self.runtime.pool, self.cfg, self.runtime.settings.tz), "notify-delivery")

    def describe(self) -> str:
        return f"notifications to {public_endpoint(self.cfg.url)}"


def create_service(runtime: Runtime, options: NodeOptions) -> NotifyService | None:
    cfg = notify_settings(runtime.settings)
    return NotifyService(runtime, cfg) if cfg.enabled else None
