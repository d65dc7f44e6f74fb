"""The aiohttp server as a node service."""

from __future__ import annotations

from aiohttp import web

from hotline.runtime import Runtime
from hotline.services import NodeOptions
from hotline.web.app import create_app


class WebService:
    name = "web"
    role = "web"
    order = 50

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        settings = self.runtime.settings
        app = create_app(settings, self.runtime.registry, runtime=self.runtime)
        # access logging is our own middleware's job
        self.runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=settings.web.shutdown_timeout
        )
        await self.runner.setup()
        site = web.TCPSite(self.runner, settings.web.host, settings.web.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else settings.web.port

    async def stop(self) -> None:
        # AppRunner.cleanup stops listening, lets in-flight requests finish within
        # shutdown_timeout, then runs the app's cleanup.
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def describe(self) -> str:
        return f"web console and API: http://{self.runtime.settings.web.host}:{self.port}/"


def create_service(runtime: Runtime, options: NodeOptions) -> WebService:
    return WebService(runtime)
