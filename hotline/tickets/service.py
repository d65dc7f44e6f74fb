"""Seeds the tickets reference data (categories, catalogue, calendar, SLA
policies) when a web node starts; only missing rows are inserted."""

from __future__ import annotations

import logging

from hotline.runtime import Runtime
from hotline.services import NodeOptions
from hotline.sla.config import sla_config
from hotline.tickets.refusals import reasons_for
from hotline.tickets.seed import seed_reference_data

log = logging.getLogger(__name__)


class TicketsSeedService:
    name = "tickets-seed"
    role = "web"
    order = 40

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.result: dict | None = None

    async def start(self) -> None:
        # the rules files are checked before anything is seeded: a bad file stops the node here
        sla_config(self.runtime.files)
        reasons_for(self.runtime.files)
        async with self.runtime.pool.acquire() as conn:
            self.result = await seed_reference_data(conn, self.runtime.files)
        if self.result.get("catalogue_skipped"):
            log.warning("dispatch catalogue entries skipped (unknown units; sync the registry): %s",
                        ", ".join(self.result["catalogue_skipped"]))

    async def stop(self) -> None:
        return None

    def describe(self) -> str:
        """One readable line (the start-up summary), not the seed's dict."""
        parts = []
        for key, value in (self.result or {}).items():
            words = key.replace("_", " ").replace("sla", "SLA")
            if isinstance(value, dict):
                parts.append(f"{words} " + ", ".join(f"{k}: {v}" for k, v in value.items()))
            elif isinstance(value, list | tuple):
                if value:
                    parts.append(f"{words}: {', '.join(map(str, value))}")
            else:
                parts.append(f"{value} {words}")
        return "tickets reference data: " + ("; ".join(parts) or "nothing to add")


def create_service(runtime: Runtime, options: NodeOptions) -> TicketsSeedService:
    return TicketsSeedService(runtime)
