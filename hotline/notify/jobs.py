"""Every few minutes: reminders to handling units before their deadlines."""

from __future__ import annotations

from datetime import datetime

from hotline.notify import notify_settings
from hotline.notify.worker import remind
from hotline.runtime import Runtime
from hotline.scheduler import JobScheduler


async def reminders(runtime: Runtime) -> int:
    return await remind(runtime.pool, notify_settings(runtime.settings), datetime.now(runtime.settings.tz))


def register(scheduler: JobScheduler) -> None:
    scheduler.add_exclusive_job("notify.reminders", reminders, "interval", minutes=5)
