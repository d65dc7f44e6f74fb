"""Periodic knowledge-base jobs (one node at a time)."""

from __future__ import annotations

import logging

from hotline.kb.articles import expire_past_validity
from hotline.runtime import Runtime
from hotline.scheduler import JobScheduler

log = logging.getLogger(__name__)


async def expire_articles(runtime: Runtime) -> list[str]:
    """Published articles whose validity ended become ``expired`` (searches already
    hide them by date; this makes the state say so and puts them on the review list)."""
    ids = await expire_past_validity(runtime.pool)
    if ids:
        log.info("knowledge base: %d article(s) expired: %s", len(ids), ", ".join(ids[:20]))
    return ids


def register(scheduler: JobScheduler) -> None:
    scheduler.add_exclusive_job("kb-expire", expire_articles, "cron", minute=5)
