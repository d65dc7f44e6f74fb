"""``create_app()``: the whole HTTP side composed in one place.

Route modules live in :mod:`hotline.web.routes`; each has ``setup(app)`` and is
picked up here, so a feature adds its routes by adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator

from aiohttp import web

from hotline.config import Settings
from hotline.db import open_database
from hotline.registry import Registry
from hotline.runtime import Runtime
from hotline.web import routes as routes_pkg
from hotline.web.keys import RUNTIME
from hotline.web.middlewares import (
    access_middleware,
    client_address_middleware,
    error_middleware,
    request_log_middleware,
    security_headers,
    validation_middleware,
)

#: largest request body accepted by default (ingest routes set their own limit)
CLIENT_MAX_SIZE = 16 * 1024 * 1024


def route_modules() -> list[str]:
    return sorted(
        f"{routes_pkg.__name__}.{m.name}"
        for m in pkgutil.iter_modules(routes_pkg.__path__)
        if not m.name.startswith("_")
    )


def create_app(
    settings: Settings, registry: Registry, *, runtime: Runtime | None = None
) -> web.Application:
    """Compose the app. With ``runtime`` the caller owns the database (``hotline
    serve``, tests); without, the app opens and closes its own pool."""
    app = web.Application(
        middlewares=[client_address_middleware, request_log_middleware, error_middleware, access_middleware,
                     validation_middleware],
        client_max_size=CLIENT_MAX_SIZE,
    )
    app.on_response_prepare.append(security_headers)
    if runtime is not None:
        app[RUNTIME] = runtime
    else:
        app.cleanup_ctx.append(_own_database(settings, registry))
    for name in route_modules():
        importlib.import_module(name).setup(app)
    return app


def _own_database(settings: Settings, registry: Registry):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        db = await open_database(settings)
        app[RUNTIME] = Runtime(settings, registry, db)
        yield
        await db.close()

    return ctx
