"""Reference data from config/: categories + dispatch catalogue, regions and their
units, the calendar years, the SLA policies. Idempotent: only what is missing is inserted, so edits
made through the API survive a restart."""

from __future__ import annotations

from typing import Any

import asyncpg

from hotline.calendar.store import seed_years
from hotline.config import Settings
from hotline.sla.config import sla_config
from hotline.sla.policies import seed_policies
from hotline.tickets.catalogue import seed_categories
from hotline.tickets.regions import seed_regions


async def seed_reference_data(conn: asyncpg.Connection, settings: Settings | None = None) -> dict[str, Any]:
    """From ``settings.config_dir`` (each file the site does not have: the packaged one)."""
    settings = settings or Settings()
    out: dict[str, Any] = await seed_categories(conn, settings.config_file("categories.yaml"))
    out.update(await seed_regions(conn, settings.config_file("regions.yaml")))
    out["calendar_days"] = await seed_years(conn, settings.config_file("calendar"))
    out["sla_policies_added"] = await seed_policies(conn, sla_config(settings))
    return out
