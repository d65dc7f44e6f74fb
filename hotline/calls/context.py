"""What every call flow receives: settings, registry, the store, the journal and the
ports to other modules. Built once per node (or per classic-AGI process)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from hotline.calls.blocklist import Blocklist
from hotline.calls.journal import CallWriter, Journal
from hotline.calls.ports import KbPort, TicketsPort, default_kb, default_tickets
from hotline.calls.settings import CallSettings
from hotline.calls.store import CallStore
from hotline.config import Settings
from hotline.registry import Registry


@dataclass(slots=True)
class CallContext:
    settings: Settings
    registry: Registry
    calls: CallSettings
    store: CallStore
    journal: Journal
    writer: CallWriter
    tickets: TicketsPort
    kb: KbPort
    #: the node's Runtime when there is one (the knowledge base's suggest() takes it)
    runtime: Any = None
    #: the node's copy of the blocklist (None: every call asks the database)
    blocklist: Blocklist | None = None
    #: local time of the hotline (service hours); replaceable in tests
    clock: Callable[[], datetime] = field(default=lambda: datetime.now())

    @classmethod
    def create(
        cls,
        settings: Settings,
        registry: Registry,
        pool: asyncpg.Pool | None,
        *,
        runtime: Any = None,
        tickets: TicketsPort | None = None,
        kb: KbPort | None = None,
        clock: Callable[[], datetime] | None = None,
        blocklist: Blocklist | None = None,
    ) -> CallContext:
        calls = CallSettings.from_settings(settings)
        store = CallStore(pool, timeout=calls.db_timeout, retry_after=calls.db_retry_seconds)
        journal = Journal(settings.data_dir / "journal", max_wait=calls.journal_wait_seconds)
        tz = settings.tz
        return cls(
            settings=settings, registry=registry, calls=calls, store=store, journal=journal,
            writer=CallWriter(store, journal), tickets=tickets or default_tickets(),
            kb=kb or default_kb(), runtime=runtime, clock=clock or (lambda: datetime.now(tz)),
            blocklist=blocklist,
        )

    @classmethod
    def for_runtime(cls, runtime: Any, *, pool: asyncpg.Pool | None = None, **overrides: Any) -> CallContext:
        """Flows over the runtime's pool, or ``pool`` (the FastAGI node's own)."""
        return cls.create(runtime.settings, runtime.registry, pool or runtime.pool, runtime=runtime, **overrides)
