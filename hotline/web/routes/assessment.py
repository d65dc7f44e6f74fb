"""Unit assessment over HTTP: the ranking per period, appeals (units file, the centre
decides) and exemptions. Thin: the domain is hotline.assessment."""

from __future__ import annotations

from datetime import date, datetime, time

from aiohttp import web

from hotline import assessment
from hotline.errors import NotFound, ValidationError
from hotline.numbering import resolve
from hotline.reports.metrics import Period
from hotline.reports.rates import DEFINITIONS
from hotline.tickets.views import is_unit_only
from hotline.web.access import api_doc, current_user, requires
from hotline.web.keys import RUNTIME
from hotline.web.params import query_bool
from hotline.web.util import json_response, param_int, read_json

TAGS = ["assessment"]
CENTRE = ("supervisor", "admin")


def _period(request: web.Request) -> Period:
    tz = request.app[RUNTIME].settings.tz
    month = request.query.get("month")
    if month:
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError:
            raise ValidationError(f"参数 month 必须是年月（如 2026-11），收到 {month!r}", field="month", value=month,
                                  code="invalid_date") from None
        nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return Period(datetime.combine(first, time(0), tz), datetime.combine(nxt, time(0), tz))
    return Period.parse(request.query.get("from"), request.query.get("to"), tz)


async def _ticket(request: web.Request, ref: object) -> int:
    if isinstance(ref, int) and not isinstance(ref, bool):
        ref = str(ref)
    if not isinstance(ref, str):
        raise ValidationError(f"请填写工单 ticket（工单编号或 id），收到 {ref!r}", field="ticket", value=ref,
                              code="missing_field")
    found = await resolve(request.app[RUNTIME].pool, ref)
    if found is None:
        raise NotFound(f"没有工单 {ref}", field="ticket", value=ref)
    return found


@requires("supervisor", "admin", "dispatcher")
@api_doc(tags=TAGS, query={"month": {"type": "string", "description": "YYYY-MM (or from/to dates)"},
                           "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"}},
         responses={200: "units ranked by composite score, with counts, rates, exemptions and the weights"})
async def ranking(request: web.Request) -> web.Response:
    """Unit ranking for a period: composite score from the three rates after exemptions."""
    rt = request.app[RUNTIME]
    cfg = assessment.assessment_settings(rt.settings)
    period = _period(request)
    rows = await assessment.ranking(rt.pool, period, cfg, now=datetime.now(rt.settings.tz))
    return json_response({"period": {"from": period.start, "to": period.end}, "weights": cfg.weights(),
                          "min_items": cfg.min_items, "definitions": DEFINITIONS, "rows": rows})


@requires("liaison")
@api_doc(tags=TAGS, body={"type": "object", "required": ["ticket", "reason"], "properties": {
    "ticket": {"type": ["string", "integer"], "description": "ticket number or id"}, "reason": {"type": "string"}}},
    responses={201: "the appeal (pending)", 404: "not a ticket of your unit", 409: "already pending or exempted"})
async def appeal_create(request: web.Request) -> web.Response:
    """A unit appeals (申诉) against a ticket counting in its assessment, with a reason."""
    body = await read_json(request)
    ticket_id = await _ticket(request, body.get("ticket"))
    async with request.app[RUNTIME].pool.acquire() as conn:
        row = await assessment.file_appeal(conn, current_user(request), ticket_id, body.get("reason"),
                                           remote_addr=request.remote)
    return json_response({"appeal": row}, status=201)


@requires("liaison", "supervisor", "admin")
@api_doc(tags=TAGS, query={"status": {"enum": ["pending", "approved", "rejected"]}},
         responses={200: "appeals, newest first (a unit sees its own)"})
async def appeal_list(request: web.Request) -> web.Response:
    """Appeals against the assessment: the centre sees all, a unit its own."""
    user = current_user(request)
    unit = user.unit_code if is_unit_only(user) else request.query.get("unit")
    items = await assessment.appeals(request.app[RUNTIME].pool, status=request.query.get("status"), unit_code=unit)
    return json_response({"items": items})


@requires(*CENTRE)
@api_doc(tags=TAGS, body={"type": "object", "required": ["decision", "reason"], "properties": {
    "decision": {"enum": ["approve", "reject"]}, "reason": {"type": "string"}}},
    responses={200: "the decided appeal and, when approved, the exemption", 409: "already decided"})
async def appeal_decide(request: web.Request) -> web.Response:
    """The centre approves (the ticket is exempted for the unit) or rejects an appeal, with a reason."""
    body = await read_json(request)
    appeal_id = param_int(request.match_info, "id", 0, high=2**62)
    async with request.app[RUNTIME].pool.acquire() as conn:
        out = await assessment.decide_appeal(conn, current_user(request), appeal_id, body.get("decision"),
                                             body.get("reason"), remote_addr=request.remote)
    return json_response(out)


@requires("liaison", "supervisor", "admin")
@api_doc(tags=TAGS, query={"all": {"type": "boolean", "description": "include revoked ones"}},
         responses={200: "exemptions, newest first (a unit sees its own)"})
async def exemption_list(request: web.Request) -> web.Response:
    """Tickets exempted from a unit's assessment (免责)."""
    user = current_user(request)
    unit = user.unit_code if is_unit_only(user) else request.query.get("unit")
    items = await assessment.exemptions(request.app[RUNTIME].pool, unit_code=unit,
                                        active_only=not query_bool(request, "all"))
    return json_response({"items": items})


@requires(*CENTRE)
@api_doc(tags=TAGS, body={"type": "object", "required": ["ticket", "unit_code", "reason"], "properties": {
    "ticket": {"type": ["string", "integer"], "description": "ticket number or id"}, "unit_code": {"type": "string"},
    "reason": {"type": "string"}}},
    responses={201: "the exemption", 409: "already exempted"})
async def exemption_create(request: web.Request) -> web.Response:
    """The centre exempts a ticket from a unit's assessment, with a reason (audited)."""
    body = await read_json(request)
    ticket_id = await _ticket(request, body.get("ticket"))
    async with request.app[RUNTIME].pool.acquire() as conn:
        row = await assessment.grant_exemption(conn, current_user(request), ticket_id, body.get("unit_code"),
                                               body.get("reason"), remote_addr=request.remote)
    return json_response({"exemption": row}, status=201)


@requires(*CENTRE)
@api_doc(tags=TAGS, body={"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}},
         responses={200: "the revoked exemption", 404: "no active exemption"})
async def exemption_revoke(request: web.Request) -> web.Response:
    """Revoke an exemption, with a reason (audited): the ticket counts again."""
    body = await read_json(request)
    exemption_id = param_int(request.match_info, "id", 0, high=2**62)
    async with request.app[RUNTIME].pool.acquire() as conn:
        row = await assessment.revoke_exemption(conn, current_user(request), exemption_id, body.get("reason"),
                                                remote_addr=request.remote)
    return json_response({"exemption": row})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/assessment/ranking", ranking)
    app.router.add_get("/api/v1/assessment/appeals", appeal_list)
    app.router.add_post("/api/v1/assessment/appeals", appeal_create)
    app.router.add_post("/api/v1/assessment/appeals/{id}/decision", appeal_decide)
    app.router.add_get("/api/v1/assessment/exemptions", exemption_list)
    app.router.add_post("/api/v1/assessment/exemptions", exemption_create)
    app.router.add_post("/api/v1/assessment/exemptions/{id}/revoke", exemption_revoke)
