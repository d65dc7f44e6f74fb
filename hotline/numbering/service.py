"""At start: the configured prefix goes to the database, and the coming days' number
sequences are created (the daily job in jobs.py keeps them ahead)."""

from __future__ import annotations

from datetime import datetime

from hotline.numbering import NumberingSettings, configure, numbering_settings, prepare
from hotline.runtime import Runtime
from hotline.services import NodeOptions


class NumberingService:
    name = "numbering"
    role = "web"
    order = 35

    def __init__(self, runtime: Runtime, cfg: NumberingSettings) -> None:
        self.runtime = runtime
        self.cfg = cfg

    async def start(self) -> None:
        await configure(self.runtime.pool, self.cfg, self.runtime.settings.timezone)
        today = datetime.now(self.runtime.settings.tz).date()
        await prepare(self.runtime.pool, today, self.cfg.prepare_days)

    async def stop(self) -> None:
        return None

    def describe(self) -> str:
        return f"ticket numbers {self.cfg.prefix}yymmdd{'n' * self.cfg.digits}"


def create_service(runtime: Runtime, options: NodeOptions) -> NumberingService:
    return NumberingService(runtime, numbering_settings(runtime.settings))
