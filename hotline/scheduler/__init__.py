"""Periodic jobs on APScheduler's ``AsyncIOScheduler``.

A feature registers jobs by adding ``hotline/<package>/jobs.py`` with
``register(scheduler: JobScheduler) -> None``. Jobs added with
:meth:`JobScheduler.add_exclusive_job` run on one node at a time when several
nodes run schedulers: each run first takes a PostgreSQL advisory lock and skips
the round when another node holds it. Jobs must be idempotent.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import pkgutil
from collections.abc import Awaitable, Callable
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

import hotline
from hotline.runtime import Runtime

log = logging.getLogger(__name__)
JobFunc = Callable[[Runtime], Awaitable[Any]]


def lock_key(job_id: str) -> int:
    """A stable signed 64-bit advisory-lock key for a job id."""
    return int.from_bytes(hashlib.sha256(f"hotline-job:{job_id}".encode()).digest()[:8], "big", signed=True)


async def run_exclusively(runtime: Runtime, job_id: str, func: JobFunc) -> tuple[bool, Any]:
    """Run ``func`` if no other node holds the job's lock: ``(ran, result)``."""
    async with runtime.pool.acquire() as conn:
        got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(job_id))
        if not got:
            log.debug("job %s skipped: running on another node", job_id)
            return False, None
        try:
            return True, await func(runtime)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key(job_id))


class JobScheduler:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.scheduler = AsyncIOScheduler(timezone=runtime.settings.timezone)
        self.job_ids: list[str] = []

    def add_exclusive_job(self, job_id: str, func: JobFunc, trigger: str, **trigger_args: Any) -> None:
        async def run() -> None:
            try:
                await run_exclusively(self.runtime, job_id, func)
            except Exception:
                log.exception("job %s failed", job_id)

        self.scheduler.add_job(
            run, trigger, id=job_id, name=job_id, coalesce=True, max_instances=1,
            misfire_grace_time=60, replace_existing=True, **trigger_args,
        )
        self.job_ids.append(job_id)


def job_modules() -> list[str]:
    names = []
    for info in pkgutil.iter_modules(hotline.__path__):
        if info.ispkg and importlib.util.find_spec(f"hotline.{info.name}.jobs") is not None:
            names.append(f"hotline.{info.name}.jobs")
    return sorted(names)


def build_scheduler(runtime: Runtime) -> JobScheduler:
    jobs = JobScheduler(runtime)
    for name in job_modules():
        importlib.import_module(name).register(jobs)
    return jobs
