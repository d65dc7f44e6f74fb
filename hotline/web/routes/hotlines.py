"""``GET /api/v1/hotlines``: the registry with its modes.

The numbers, names, departments and modes are public information (they are
printed on posters), so the list is public on purpose; PBX internals (queues,
expert pools, dial strings) are shown only to signed-in staff.
"""

from __future__ import annotations

from aiohttp import web

from hotline.registry import list_hotlines
from hotline.registry.model import Mode
from hotline.web.access import api_doc, public
from hotline.web.keys import RUNTIME, USER
from hotline.web.params import query_bool
from hotline.web.util import json_response

_PUBLIC_FIELDS = ("number", "name", "department", "unit_code", "mode", "mode_basis", "service_hours")


@public
@api_doc(query={"include_inactive": {"type": "boolean", "description": "deactivated lines too"}})
async def hotlines(request: web.Request) -> web.Response:
    """The hotline registry: 12345 and the 32 legacy lines with their merge modes.

    Public fields for everyone; queues, expert pools and dial targets for signed-in staff.
    """
    include_inactive = query_bool(request, "include_inactive")
    rows = await list_hotlines(request.app[RUNTIME].pool, include_inactive=include_inactive)
    staff = request.get(USER) is not None
    items = []
    for row in rows:
        item = dict(row) if staff else {k: row[k] for k in _PUBLIC_FIELDS} | {"active": row["active"]}
        item["mode_confirmed"] = not row["mode_basis"].lower().startswith("sample")
        items.append(item)
    counts = {m.value: 0 for m in Mode}
    for row in rows:
        if row["active"]:
            counts[row["mode"]] += 1
    return json_response({"items": items, "total": len(items), "counts": counts})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/hotlines", hotlines)
