"""Tickets looked up by their readable number (工单流水号, e.g. ZS2612010001): every
ticket route under ``/api/v1/tickets/{id}`` also answers under the number, by a 307
redirect to the id's path (method, body and query kept), after the same visibility
check as the id's route: a number the user may not see is 404, like an unknown one."""

from __future__ import annotations

from aiohttp import web

from hotline.errors import NotFound
from hotline.numbering import resolve
from hotline.tickets.views import _visible
from hotline.web.access import api_doc, current_user, requires
from hotline.web.keys import RUNTIME

NUMBER = "{number:[A-Za-z]{1,8}[0-9]{9,14}}"


@requires()
@api_doc(tags=["tickets"], responses={307: "to the same route under the ticket's id", 404: "no such ticket"})
async def by_number(request: web.Request) -> web.StreamResponse:
    """A ticket route addressed by the ticket's number instead of its id (detail, history, actions ...)."""
    number = request.match_info["number"]
    user = current_user(request)
    async with request.app[RUNTIME].pool.acquire() as conn:
        ticket_id = await resolve(conn, number)
        if ticket_id is None or not await _visible(conn, ticket_id, user):
            raise NotFound(f"没有工单 {number}", field="number", value=number)
    tail = request.match_info.get("tail", "")
    location = request.rel_url.with_path(f"/api/v1/tickets/{ticket_id}" + (f"/{tail}" if tail else ""),
                                         keep_query=True)
    raise web.HTTPTemporaryRedirect(location=str(location))


def setup(app: web.Application) -> None:
    for method in ("GET", "POST"):
        app.router.add_route(method, f"/api/v1/tickets/{NUMBER}", by_number)
        app.router.add_route(method, f"/api/v1/tickets/{NUMBER}/{{tail:.+}}", by_number)
