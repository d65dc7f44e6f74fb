"""Reference data from config/: categories + dispatch catalogue, regions and their
units, the calendar years, the SLA policies. Idempotent: only what is missing is inserted, so edits
made through the API survive a restart."""

from __future__ import annotations

from typing import Any

import asyncpg

from hotline.calendar.store import seed_years
from hotline.config import ConfigFiles, packaged_files
from hotline.sla.config import sla_config
from hotline.sla.policies import seed_policies
from hotline.tickets.catalogue import seed_categories
from hotline.tickets.regions import seed_regions


async def seed_reference_data(conn: asyncpg.Connection, files: ConfigFiles | None = None) -> dict[str, Any]:
    """From the node's files (``runtime.files``: its ``config_dir``, each file the site
    does not have: the packaged one); with no files, the packaged ones."""
    files = files or packaged_files()
    out: dict[str, Any] = await seed_categories(conn, files)
    out.update(await seed_regions(conn, files))
    out["calendar_days"] = await seed_years(conn, files.settings.config_file("calendar"))
    out["sla_policies_added"] = await seed_policies(conn, sla_config(files))
    return out
