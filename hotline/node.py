"""``hotline serve``: one asyncio process running the node's services.

Start order: load and validate the registry and the configuration files (refuse
before touching the database), open the database (embedded or configured),
optionally migrate and sync, start services. On SIGINT/SIGTERM: stop accepting, let in-flight work
finish within a bounded time, stop services in reverse, close the pool, release
the embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from hotline.agi.live_transfer import ami_mover
from hotline.config import ConfigFiles, Settings
from hotline.db import open_database
from hotline.db.migrations import migrate
from hotline.errors import ConfigError
from hotline.registry import load_registry, sync_registry
from hotline.runtime import Runtime
from hotline.services import NodeOptions, Service, create_services

if TYPE_CHECKING:
    from hotline.telephony.sandbox import AsteriskSandbox

log = logging.getLogger("hotline.node")
POOL_CLOSE_TIMEOUT = 10.0


def section_loaders() -> dict[str, Callable[[Settings], object]]:
    """Every ``[section]`` of the configuration file and the typed loader that reads it
    (``web``, ``agi`` and ``database`` are read by hotline.config itself). A new section
    goes here: tests/test_config.py fails for a loader that is not listed."""
    from hotline.assessment import assessment_settings
    from hotline.calls.settings import CallSettings
    from hotline.feed.config import feed_settings
    from hotline.ingest.config import ingest_settings
    from hotline.kb.settings import KbSettings
    from hotline.notify import notify_settings
    from hotline.numbering import numbering_settings
    from hotline.numbering.progress import progress_settings
    from hotline.quality.config import quality_settings
    from hotline.upstream.config import upstream_settings

    return {
        "calls": CallSettings.from_settings, "kb": KbSettings.from_settings, "feed": feed_settings,
        "ingest": ingest_settings, "upstream": upstream_settings, "quality": quality_settings,
        "numbering": numbering_settings, "progress": progress_settings, "notify": notify_settings,
        "assessment": assessment_settings,
    }


def check_sections(settings: Settings) -> None:
    """Validate every section at start: an unknown section, an unknown key or a value of
    the wrong type is refused here, naming the setting, not later as a 500."""
    loaders = section_loaders()
    for name in settings.extra:
        if name not in loaders:
            raise ConfigError(f"unknown section [{name}]; sections are {sorted(loaders)}", field=name)
    for load in loaders.values():
        load(settings)


def config_file_loaders() -> dict[str, Callable[[ConfigFiles], object]]:
    """Every configuration file a node keeps parsed in ``runtime.files`` and the accessor
    that reads it (the registry and the calendar years are read by their own steps)."""
    from hotline.sla.config import sla_config
    from hotline.tickets.catalogue import categories_for
    from hotline.tickets.refusals import reasons_for
    from hotline.tickets.regions import regions_for

    return {"sla.yaml": sla_config, "refusal_reasons.yaml": reasons_for, "categories.yaml": categories_for,
            "regions.yaml": regions_for}


def check_config_files(files: ConfigFiles) -> None:
    """Read every file of ``config_dir`` into the node's :class:`ConfigFiles` before the
    database is opened: a typo stops the node here, the error naming the file and the
    setting, not later as a 500."""
    for load in config_file_loaders().values():
        load(files)


async def run_node(
    settings: Settings,
    options: NodeOptions,
    *,
    do_migrate: bool = False,
    stop_event: asyncio.Event | None = None,
    on_ready: Callable[[list[Service]], None] | None = None,
) -> None:
    registry = load_registry(settings.registry_path)
    files = ConfigFiles(settings)
    check_config_files(files)
    stop_event = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop_event.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass

    pbx: AsteriskSandbox | None = None
    if options.demo:  # the demo's own telephone exchange, when an Asterisk is at hand
        from hotline.demo.pbx import start_demo_pbx

        settings, registry, pbx = await start_demo_pbx(settings, registry)
    try:
        db = await open_database(settings)
    except BaseException:
        await _stop_demo_pbx(pbx)
        raise
    started: list[Service] = []
    runtime = Runtime(settings, registry, db, channel_mover=ami_mover, config_files=files)
    try:
        if do_migrate:
            async with db.pool.acquire() as conn:
                applied = await migrate(conn, settings.migrations_dir)
                result = await sync_registry(conn, registry)
            log.info("migrations applied: %d; registry: %s", len(applied), result.summary())
        for service in create_services(runtime, options):
            await service.start()
            started.append(service)
            log.info("started %s", service.describe())
        if on_ready:
            on_ready(started)
        await stop_event.wait()
        log.info("shutting down")
    finally:
        for service in reversed(started):
            try:
                await asyncio.wait_for(
                    service.stop(),
                    settings.web.shutdown_timeout + 5,
                )
            except Exception:
                log.exception("stopping %s failed", service.name)
        await runtime.close()
        try:
            await asyncio.wait_for(db.pool.close(), POOL_CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("pool did not close within %s s; terminating connections", POOL_CLOSE_TIMEOUT)
            db.pool.terminate()
        if db.embedded is not None:
            await db.embedded.stop()
        await _stop_demo_pbx(pbx)
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
        log.info("stopped")


async def _stop_demo_pbx(pbx: AsteriskSandbox | None) -> None:
    if pbx is not None:
        from hotline.demo.pbx import stop_demo_pbx

        await stop_demo_pbx(pbx)
