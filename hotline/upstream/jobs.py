"""Retention of the change log: changes older than ``[feed] retention_days`` are
pruned, never past the upstream worker's cursor while a push is configured.

The job lives with the upstream push (the change log's consumer that must not lose
changes) so that ``feed`` knows nothing of ``upstream`` (no package cycle); it runs
whether or not a push is configured."""

from __future__ import annotations

from hotline.feed.changes import Cursor, prune
from hotline.feed.config import feed_settings
from hotline.runtime import Runtime
from hotline.scheduler import JobScheduler
from hotline.upstream.config import upstream_settings


def retention_days(runtime: Runtime) -> int:
    return feed_settings(runtime.settings).retention_days


async def prune_changes(runtime: Runtime) -> int:
    keep_after = None
    if upstream_settings(runtime.settings).enabled:
        row = await runtime.pool.fetchrow("SELECT cursor_txid::text AS txid, cursor_id FROM upstream_state")
        keep_after = Cursor(int(row["txid"]), row["cursor_id"])
    async with runtime.pool.acquire() as conn:
        return await prune(conn, older_than_days=retention_days(runtime), keep_after=keep_after)


def register(scheduler: JobScheduler) -> None:
    scheduler.add_exclusive_job("feed.prune", prune_changes, "cron", hour=3, minute=10)
