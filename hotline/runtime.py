"""What every part of a running node shares: settings, the registry, the database,
the node's configuration files (read from its ``config_dir`` once), the node's one
event listener and the working-day calendar (read once per version, in the node's
time zone).

The web app, the FastAGI server and the scheduler each receive one
:class:`Runtime`; nothing is kept in module globals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from typing import Any

import asyncpg

from hotline.calendar.store import CalendarStore
from hotline.config import ConfigFiles, Settings
from hotline.db import Database
from hotline.events import EventListener
from hotline.registry import Registry


@dataclass(slots=True)
class Runtime:
    settings: Settings
    registry: Registry
    db: Database
    #: builds the PBX port that moves a live channel (``[calls] ami_*`` settings ->
    #: :class:`hotline.calls.transfer.ChannelMover` or None). The composition
    #: root (``hotline.node``) passes the AMI adapter; None: transfers are decided
    #: and recorded but no channel is moved.
    channel_mover: Callable[[Any], Any] | None = None
    _listener: EventListener | None = field(default=None, repr=False)
    _listener_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _calendars: CalendarStore | None = field(default=None, repr=False)
    #: the node's knowledge-base engine (:func:`hotline.kb.engine.get_kb` opens it on
    #: first use and keeps it here)
    kb_engine: Any = field(default=None, repr=False)
    #: the node's configuration files (``sla.yaml``, ``refusal_reasons.yaml``, ...), each
    #: parsed once; ``hotline serve`` loads them all before it opens the database
    files: ConfigFiles = field(init=False, repr=False)
    #: files already loaded and checked (``hotline serve`` does so before it opens the
    #: database); default: read from ``settings.config_dir`` on first use
    config_files: InitVar[ConfigFiles | None] = None

    def __post_init__(self, config_files: ConfigFiles | None) -> None:
        if config_files is not None and config_files.config_dir != self.settings.config_dir:
            raise ValueError(f"the runtime's files are read from {config_files.config_dir}, "
                             f"its settings say config_dir = {self.settings.config_dir}")
        self.files = config_files or ConfigFiles(self.settings)

    @property
    def calendars(self) -> CalendarStore:
        """The node's calendar store (every deadline of the node in ``settings.tz``)."""
        if self._calendars is None:
            self._calendars = CalendarStore(self.settings.tz)
        return self._calendars

    @property
    def pool(self) -> asyncpg.Pool:
        return self.db.pool

    async def events(self) -> EventListener:
        """The node's LISTEN connection, started on first use."""
        async with self._listener_lock:
            if self._listener is None:
                listener = EventListener(self.db.url)
                await listener.start()
                self._listener = listener
            return self._listener

    async def close(self) -> None:
        """Stop what the runtime started (not the pool: its owner closes that)."""
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
