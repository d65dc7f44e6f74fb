"""The citizens' progress look-up (工单进度查询). PUBLIC ON PURPOSE: citizens have no
accounts; the answer holds no personal data (state, unit name, dates), needs the
ticket number and the last four digits of the caller's phone, refuses every wrong
input the same way and is rate-limited per client address and per ticket number
(hotline.numbering.progress). Documented in docs/RATES.md and the OpenAPI."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from aiohttp import web

from hotline.errors import ValidationError
from hotline.numbering.progress import look_up, progress_settings
from hotline.web.access import api_doc, public
from hotline.web.keys import RUNTIME
from hotline.web.util import json_response, read_json

PAGE = Path(__file__).resolve().parent.parent / "static" / "progress.html"


@public  # citizens look their ticket up without an account; see the module docstring
@api_doc(tags=["public"], body={"type": "object", "required": ["number", "phone_suffix"], "properties": {
    "number": {"type": "string", "description": "ticket number, e.g. ZS2612010001"},
    "phone_suffix": {"type": "string", "pattern": "^[0-9]{4}$", "description": "last 4 digits of the caller's phone"}}},
    responses={200: "state, unit name and dates", 404: "no match (the same answer for every wrong input)",
               429: "too many look-ups from this address or for this number"})
async def progress(request: web.Request) -> web.Response:
    """Public progress look-up of a ticket by its number and the last 4 digits of the caller's phone."""
    rt = request.app[RUNTIME]
    try:
        body = await read_json(request, max_bytes=4096)
    except ValidationError:
        body = {}  # not JSON: refused like any other wrong input (and counted)
    async with rt.pool.acquire() as conn:
        result = await look_up(conn, progress_settings(rt.settings), number=body.get("number"),
                               suffix=body.get("phone_suffix"), client=request.remote or "unknown",
                               now=datetime.now(rt.settings.tz))
    return json_response({"ticket": result}, headers={"Cache-Control": "no-store"})


@public  # the look-up page itself (an empty shell, Chinese)
async def page(request: web.Request) -> web.StreamResponse:
    """The public progress look-up page (工单进度查询)."""
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/public/progress", progress)
    app.router.add_get("/progress", page)
