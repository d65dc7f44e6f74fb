"""Daily: keep the next days' ticket-number sequences created ahead of time, and
forget old progress look-up attempts."""

from __future__ import annotations

from datetime import datetime

from hotline.numbering import numbering_settings, prepare
from hotline.numbering.progress import progress_settings, prune
from hotline.runtime import Runtime
from hotline.scheduler import JobScheduler


async def prepare_sequences(runtime: Runtime) -> None:
    cfg = numbering_settings(runtime.settings)
    await prepare(runtime.pool, datetime.now(runtime.settings.tz).date(), cfg.prepare_days)


async def prune_lookups(runtime: Runtime) -> int:
    return await prune(runtime.pool, progress_settings(runtime.settings), datetime.now(runtime.settings.tz))


def register(scheduler: JobScheduler) -> None:
    scheduler.add_exclusive_job("numbering.prepare_sequences", prepare_sequences, "cron", hour=0, minute=5)
    scheduler.add_exclusive_job("numbering.prune_lookups", prune_lookups, "interval", hours=1)
