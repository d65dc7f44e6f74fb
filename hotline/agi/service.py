"""The FastAGI server as a node service (role ``agi``), plus the journal replay loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from hotline.agi.server import FastAgiServer
from hotline.calls.blocklist import Blocklist
from hotline.calls.context import CallContext
from hotline.calls.settings import CallSettings
from hotline.calls.store import DatabaseDown
from hotline.config import Settings
from hotline.db.pool import create_work_pool
from hotline.runtime import Runtime
from hotline.services import NodeOptions

log = logging.getLogger("hotline.agi")


async def create_call_pool(url: str, settings: Settings, calls: CallSettings) -> asyncpg.Pool:
    """The FastAGI node's own pool: web load can never starve call routing."""
    return await create_work_pool(url, settings, part="agi", min_size=calls.pool_min, max_size=calls.pool_max)


class AgiService:
    name = "agi"
    role = "agi"
    order = 40

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.ctx: CallContext | None = None
        self.server: FastAgiServer | None = None
        self._replayer: asyncio.Task[None] | None = None
        self.pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        calls = CallSettings.from_settings(self.runtime.settings)
        self.pool = await create_call_pool(self.runtime.db.url, self.runtime.settings, calls)
        self.ctx = CallContext.for_runtime(self.runtime, pool=self.pool, blocklist=Blocklist())
        self.server = FastAgiServer(self.ctx, self.runtime.settings.agi)
        await self.server.start()
        self._replayer = asyncio.create_task(self._replay_loop(), name="call-journal-replay")
        # after the server: calls are routed (asking the database) while the copy loads
        await self._follow_blocklist(self.ctx)

    async def _follow_blocklist(self, ctx: CallContext) -> None:
        """The node's copy of the blocklist (hotline.calls.blocklist); without the event
        connection (database down at start) calls ask the database, as they always can."""
        assert ctx.blocklist is not None and self.pool is not None
        try:
            async with asyncio.timeout(ctx.calls.db_timeout * 4):
                listener = await self.runtime.events()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("blocklist copy off (no event connection: %s); calls ask the database", exc)
            ctx.blocklist = None
            return
        await ctx.blocklist.start(self.pool, listener)

    async def _replay_loop(self) -> None:
        assert self.ctx is not None
        while True:
            try:
                if self.ctx.journal.needs_replay():
                    await self.ctx.journal.replay(self.ctx.store)
            except DatabaseDown as exc:
                log.info("journal replay postponed: database still unavailable (%s)", exc)
            except Exception:
                log.exception("journal replay failed; retrying later")
            await asyncio.sleep(self.ctx.calls.journal_replay_interval)

    async def stop(self) -> None:
        if self._replayer is not None:
            self._replayer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replayer
        if self.server is not None:
            await self.server.stop(grace=self.runtime.settings.agi.command_timeout)
        if self.ctx is not None and self.ctx.blocklist is not None:
            await self.ctx.blocklist.stop()
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def describe(self) -> str:
        settings = self.runtime.settings.agi
        port = self.server.port if self.server else settings.port
        return f"FastAGI: agi://{settings.host}:{port}"


def create_service(runtime: Runtime, options: NodeOptions) -> AgiService:
    return AgiService(runtime)
