"""What every part of a running node shares: settings, the registry, the database.

The web app, the FastAGI server and the scheduler each receive one
:class:`Runtime`; nothing is kept in module globals.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from hotline.config import Settings
from hotline.db import Database
from hotline.registry import Registry


@dataclass(slots=True)
class Runtime:
    settings: Settings
    registry: Registry
    db: Database

    @property
    def pool(self) -> asyncpg.Pool:
        return self.db.pool
