"""Housekeeping: drop expired sessions and old sign-in failures."""

from __future__ import annotations

from datetime import timedelta

from hotline.auth.sessions import purge_expired
from hotline.runtime import Runtime
from hotline.scheduler import JobScheduler


async def purge_sessions(runtime: Runtime) -> int:
    idle = timedelta(minutes=runtime.settings.web.session_idle_minutes)
    return await purge_expired(runtime.pool, idle=idle)


def register(scheduler: JobScheduler) -> None:
    scheduler.add_exclusive_job("auth.purge_sessions", purge_sessions, "interval", minutes=10)
