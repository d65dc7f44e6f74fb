"""The daily data-quality job: yesterday's report for every active source."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from hotline.ingest.config import ingest_settings
from hotline.quality.config import quality_settings
from hotline.quality.report import build_report, store_report
from hotline.runtime import Runtime
from hotline.scheduler import JobScheduler

log = logging.getLogger(__name__)


async def generate(runtime: Runtime, day: date, sources: list[str] | None = None) -> list[dict[str, Any]]:
    """Build and store the reports of ``day`` (idempotent: a rerun replaces them)."""
    cfg = quality_settings(runtime.settings)
    ingest = ingest_settings(runtime.settings)
    regions = ingest.regions
    if sources is None:
        sources = [r["code"] for r in await runtime.pool.fetch(
            "SELECT code FROM ingest_sources WHERE active ORDER BY code")]
    reports = []
    async with runtime.pool.acquire() as conn:
        for source in sources:
            report = await build_report(conn, source, day, tz=runtime.settings.tz,
                                        late_threshold=cfg.late_threshold_seconds, regions=regions,
                                        examples=cfg.examples, unlinked_minutes=ingest.cdr_unlinked_minutes)
            await store_report(conn, report)
            reports.append(report)
    return reports


async def daily(runtime: Runtime) -> int:
    yesterday = datetime.now(runtime.settings.tz).date() - timedelta(days=1)
    reports = await generate(runtime, yesterday)
    log.info("data-quality reports for %s: %d source(s)", yesterday, len(reports))
    return len(reports)


def register(scheduler: JobScheduler) -> None:
    cfg = quality_settings(scheduler.runtime.settings)
    scheduler.add_exclusive_job("quality.daily", daily, "cron", hour=cfg.daily_hour, minute=cfg.daily_minute)
