"""The periodic SLA scan (one node at a time: ``add_exclusive_job``)."""

from __future__ import annotations

import logging

from hotline.runtime import Runtime
from hotline.scheduler import JobScheduler
from hotline.sla.config import sla_config
from hotline.sla.scan import ScanResult, scan

log = logging.getLogger(__name__)
JOB_ID = "sla.scan"


async def scan_job(runtime: Runtime) -> ScanResult:
    result = await scan(runtime.pool)
    if result.alerts:
        log.info("sla scan: %s", result.to_json())
    return result


def register(scheduler: JobScheduler) -> None:
    interval = sla_config(scheduler.runtime.files).scan_interval_seconds
    scheduler.add_exclusive_job(JOB_ID, scan_job, "interval", seconds=interval)
