"""Reference data from config/: categories + dispatch catalogue, regions and their
units, the calendar years, the SLA policies. Idempotent: only what is missing is inserted, so edits
made through the API survive a restart."""

from __future__ import annotations

from typing import Any

import asyncpg

from hotline.calendar.store import seed_years
from hotline.sla.policies import seed_policies
from hotline.tickets.catalogue import seed_categories
from hotline.tickets.regions import seed_regions


async def seed_reference_data(conn: asyncpg.Connection) -> dict[str, Any]:
    out: dict[str, Any] = await seed_categories(conn)
    out.update(await seed_regions(conn))
    out["calendar_days"] = await seed_years(conn)
    out["sla_policies_added"] = await seed_policies(conn)
    return out
