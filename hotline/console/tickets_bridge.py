"""Short ticket views for the screen-pop and the expert's inbox, read from the
tickets tables (owned by the tickets package; read-only here)."""

from __future__ import annotations

from typing import Any

from hotline.masking import mask, mask_name
from hotline.runtime import Runtime
from hotline.tickets.model import KIND_NAMES_ZH, STATE_NAMES_ZH


async def summaries(runtime: Runtime, ids: list[int]) -> list[dict[str, Any]]:
    rows = await runtime.pool.fetch(
        """SELECT t.id, t.number, t.state, t.kind, t.urgency, t.subject, left(t.facts, 300) AS facts, t.location,
                  t.hotline_number, t.category_code, c.name AS category_name, t.lead_unit_code,
                  un.name AS lead_unit_name, t.caller_name, t.caller_number, t.confidential,
                  t.answer, t.created_at, t.closed_at
             FROM tickets t
             LEFT JOIN ticket_categories c ON c.code = t.category_code
             LEFT JOIN units un ON un.code = t.lead_unit_code
            WHERE t.id = ANY($1::bigint[])""",
        ids,
    )
    by_id = {r["id"]: r for r in rows}
    out = []
    for i in ids:
        r = by_id.get(i)
        if r is None:
            continue
        item = dict(r)
        # the screen-pop and the inbox are documented as masked: the number and the name
        item["caller_number"] = mask(r["caller_number"])
        item["caller_name"] = mask_name(r["caller_name"])
        item["state_name"] = STATE_NAMES_ZH.get(r["state"], r["state"])
        item["kind_name"] = KIND_NAMES_ZH.get(r["kind"], r["kind"])
        out.append(item)
    return out
