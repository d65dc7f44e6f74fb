"""Operator endpoints: ``/healthz`` and ``/metrics`` (public on purpose)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hotline import __version__, metrics
from hotline.web.access import public
from hotline.web.keys import RUNTIME
from hotline.web.util import json_response

HEALTH_DB_TIMEOUT = 2.0
log = logging.getLogger("hotline.health")


@public  # load balancers and operators probe it without credentials
async def healthz(request: web.Request) -> web.Response:
    """Health: 200 when the database answers, 503 when not (the cause goes to the log only:
    this answer is public, and a driver's message can name roles, hosts and paths)."""
    runtime = request.app[RUNTIME]
    try:
        async with asyncio.timeout(HEALTH_DB_TIMEOUT):
            await runtime.pool.fetchval("SELECT 1")
    except TimeoutError:
        log.warning("healthz: the database did not answer within %s s", HEALTH_DB_TIMEOUT)
        return json_response({"status": "unavailable", "database": "unavailable"}, status=503)
    except Exception:  # any failure to reach PostgreSQL means "not healthy"
        log.exception("healthz: the database check failed")
        return json_response({"status": "unavailable", "database": "unavailable"}, status=503)
    return json_response({"status": "ok", "database": "ok", "version": __version__})


@public  # scraped by Prometheus; counts only, no personal data
async def prometheus_metrics(request: web.Request) -> web.Response:
    """Prometheus metrics in the text exposition format."""
    pool = request.app[RUNTIME].pool
    metrics.DB_POOL_SIZE.labels("total").set(pool.get_size())
    metrics.DB_POOL_SIZE.labels("idle").set(pool.get_idle_size())
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus_metrics)
