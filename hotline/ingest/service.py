"""Followers of Asterisk's Master.csv and queue_log as a node service (role
"workers"), when ``[ingest] cdr_csv`` or ``queue_log`` is configured. Run it on the
node that sees Asterisk's log directory. It settles what waited for its call (legs and
queue events imported before the AGI's record was replayed): every round while an
import recently left some, every half minute otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from zoneinfo import ZoneInfo

import asyncpg

from hotline.db.pool import create_work_pool
from hotline.ingest.cdr import settle_pending
from hotline.ingest.config import IngestSettings, ingest_settings
from hotline.ingest.follower import FileFollower
from hotline.runtime import Runtime
from hotline.services import NodeOptions

log = logging.getLogger(__name__)

#: seconds between settling rounds while rows wait for their call, for SETTLE_WINDOW
#: seconds after an import left some; SETTLE_IDLE otherwise
SETTLE_SOON = 1.0
SETTLE_WINDOW = 300.0
SETTLE_IDLE = 30.0


class AsteriskRecordsService:
    name = "asterisk-records"
    role = "workers"
    order = 60

    def __init__(self, runtime: Runtime, cfg: IngestSettings) -> None:
        self.runtime = runtime
        self.cfg = cfg
        self.tz = ZoneInfo(cfg.cdr_timezone or runtime.settings.timezone)
        self.paths = [(path, kind) for path, kind in ((cfg.cdr_csv, "cdr_csv"), (cfg.queue_log, "queue_log")) if path]
        self.followers: list[FileFollower] = []
        self.pool: asyncpg.Pool | None = None
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # a pool of its own: the followers keep no session state (no reset query per release)
        self.pool = await create_work_pool(self.runtime.db.url, self.runtime.settings, part="ingest", min_size=1, max_size=2)
        self.followers = [
            FileFollower(self.pool, path, kind, self.tz, self.cfg.cdr_default_line, self.cfg.cdr_skew_tolerance)
            for path, kind in self.paths
        ]
        self.task = asyncio.create_task(self._run(), name="asterisk-records")

    async def _run(self) -> None:
        # rows waiting for their call (imported before it existed: the journal replays the
        # AGI's record later, possibly on another node) are settled every SETTLE_SOON
        # seconds for SETTLE_WINDOW seconds after an import left some, and otherwise
        # every SETTLE_IDLE seconds: an idle node does not ask the database every second
        waiting_at = -SETTLE_WINDOW
        settled_at = -SETTLE_IDLE
        while not self.stopping.is_set():
            for follower in self.followers:
                try:
                    result = await follower.poll()
                except Exception as exc:  # the database or the file may be away for a while
                    log.warning("following %s failed (will retry): %s", follower.path, exc)
                else:
                    if result.waiting:
                        waiting_at = time.monotonic()
            now = time.monotonic()
            every = SETTLE_SOON if now - waiting_at < SETTLE_WINDOW else SETTLE_IDLE
            if now - settled_at >= every:
                settled_at = now
                try:
                    await self.settle()
                except Exception as exc:
                    log.warning("settling Asterisk records waiting for their call failed (will retry): %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.follow_interval):
                    await self.stopping.wait()

    async def settle(self) -> int:
        async with (self.pool or self.runtime.pool).acquire() as conn, conn.transaction():
            return await settle_pending(conn, default_line=self.cfg.cdr_default_line,
                                        skew_tolerance=self.cfg.cdr_skew_tolerance, tz_name=str(self.tz))

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for follower in self.followers:
            follower.close()
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def describe(self) -> str:
        return "following Asterisk records: " + ", ".join(path for path, _ in self.paths)


def create_service(runtime: Runtime, options: NodeOptions) -> AsteriskRecordsService | None:
    cfg = ingest_settings(runtime.settings)
    if not (cfg.cdr_csv or cfg.queue_log):
        return None
    return AsteriskRecordsService(runtime, cfg)
