"""Tickets over HTTP: intake, list, detail, history, the state machine's actions,
the callback plan, the category code table. Thin: the domain is hotline.tickets."""

from __future__ import annotations

from aiohttp import web

from hotline.errors import Forbidden, NotFound, ValidationError
from hotline.tickets import refusals, views
from hotline.tickets.catalogue import category_tree, save_category
from hotline.tickets.intake import open_ticket
from hotline.tickets.model import (
    ACTION_NAMES_ZH,
    CHANNELS,
    KINDS,
    STATE_NAMES_ZH,
    TRANSITIONS,
    URGENCIES,
)
from hotline.tickets.views import is_unit_only
from hotline.tickets.workflow import apply
from hotline.web.access import api_doc, current_user, requires
from hotline.web.caller_filter import caller_filter
from hotline.web.keys import RUNTIME
from hotline.web.params import path_int, query_bool, query_datetime, query_optional_bool
from hotline.web.util import json_response, query_int, read_json

FRONT = ("agent", "expert", "dispatcher", "supervisor", "admin")
TAGS = ["tickets"]

TICKET_BODY = {
    "type": "object",
    "required": ["hotline_number", "subject"],
    "properties": {
        "hotline_number": {"type": "string", "description": "origin line (来电号码线路), e.g. 12345"},
        "subject": {"type": "string", "maxLength": 200, "description": "what (诉求事项)"},
        "facts": {"type": "string", "description": "facts and demands (事实与诉求)"},
        "location": {"type": "string", "description": "where (事发地点)"},
        "occurred_at": {"type": "string", "format": "date-time", "description": "when (事发时间)"},
        "caller_name": {"type": "string", "description": "who (诉求人)"},
        "caller_number": {"type": "string"}, "contact_number": {"type": "string"},
        "category_code": {"type": "string"}, "kind": {"enum": list(KINDS)},
        "region_code": {"type": "string", "description": "属地: a GB/T 2260 code from GET /api/v1/regions"},
        "urgency": {"enum": list(URGENCIES)}, "channel": {"enum": list(CHANNELS)},
        "confidential": {"type": "boolean", "description": "hide the caller's identity from handling units"},
        "attachments": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "ref": {"type": "string"}, "type": {"type": "string"}}}},
        "call_ids": {"type": "array", "items": {"type": "integer"}},
        "dispatch": {"type": "object", "description": "dispatch at once: {unit_code?, assist_units?, due_at?}"},
        "close_direct": {"type": "object", "description": "close at once: {answer, kb_article_id?}"},
    },
}
ACTION_BODY = {
    "type": "object",
    "description": "Fields by action: dispatch/redispatch {unit_code?, assist_units?, due_at?} (no unit: the "
                   "unit suggested for region x category); close_direct {answer, kb_article_id?}; "
                   "refuse/transfer_out {reason_code, answer}; return/return_up/reject_return/refuse_extension/"
                   "request_await/await_citizen/refuse_await/reopen {reason}; subdispatch {unit_code, due_at?}; "
                   "request_extension {days, reason}; approve_extension {days?}; reply/reply_up {reply, basis}; "
                   "callback_close {satisfaction 1-5, resolution? (resolved|partly|unresolved), comment?}; "
                   "callback_reopen {satisfaction, resolution?, reason}; "
                   "supervise {instruction, reply_due_at?}; supervise_reply {reply, order_id?}; "
                   "elevate {reason, unit_code?}; urge {message}; merge {master_id}; link_call {call_id}; "
                   "update {changes}; assist_reply {reply}; add_assist {unit_code}. "
                   "Every action takes an optional note.",
    "properties": {"note": {"type": "string"}},
}


@requires(*FRONT)
@api_doc(tags=TAGS, body=TICKET_BODY, responses={201: "the ticket", 400: "bad input, naming the field"})
async def create(request: web.Request) -> web.Response:
    """Open a ticket (受理) with the five elements; optionally dispatch or close it at once.

    With `dispatch` the ticket is created and dispatched in one transaction (the
    lead unit defaults to the dispatch catalogue's unit for the category).
    """
    user = current_user(request)
    body = await read_json(request)
    runtime = request.app[RUNTIME]
    async with runtime.pool.acquire() as conn:
        ticket_id = await open_ticket(conn, body, user, source="api", calendars=runtime.calendars,
                                      files=runtime.files)
        view = await views.ticket_view(conn, ticket_id, user)
    return json_response({"ticket": view}, status=201)


@requires()
@api_doc(tags=TAGS, query={
    "state": {"type": "string", "enum": list(STATE_NAMES_ZH)}, "open": {"type": "boolean"},
    "unit": {"type": "string", "description": "tickets with a leg at this unit"},
    "line": {"type": "string"}, "caller": {"type": "string", "description": "masked caller number (centre roles); a full "
                                       "number for supervisors and admins only, audited"},
    "overdue": {"type": "boolean"}, "from": {"type": "string", "format": "date-time"},
    "to": {"type": "string", "format": "date-time"}, "before_id": {"type": "integer"},
    "limit": {"type": "integer", "maximum": 500}}, responses={200: "tickets, newest first"})
async def list_(request: web.Request) -> web.Response:
    """List tickets visible to you (a unit liaison sees only its unit's tickets); numbers masked."""
    q = request.query
    limit = query_int(request, "limit", 50, high=500)
    before = query_int(request, "before_id", None, high=2**62)
    overdue = query_optional_bool(request, "overdue")
    if q.get("caller") and is_unit_only(current_user(request)):
        raise Forbidden("承办单位不能按来电号码查询工单", field="caller", code="caller_search_forbidden")
    caller = await caller_filter(request, audit_action="tickets.search_by_caller")
    items = await views.list_tickets(
        request.app[RUNTIME].pool, current_user(request), state=q.get("state"),
        open_only=query_bool(request, "open"), unit_code=q.get("unit"), hotline_number=q.get("line"),
        caller_number=caller.number, caller_pattern=caller.pattern, overdue=overdue, created_from=query_datetime(request, "from"),
        created_to=query_datetime(request, "to"), before_id=before, limit=limit)
    return json_response({"items": items, "next_before_id": items[-1]["id"] if len(items) == limit else None})


@requires()
@api_doc(tags=TAGS, query={"reveal": {"type": "string", "enum": ["contact"],
                                      "description": "show the caller's numbers unmasked (audited)"}},
         responses={200: "the ticket with legs, running SLA clocks and the actions you may take", 404: "not found"})
async def detail(request: web.Request) -> web.Response:
    """One ticket. Numbers are masked unless `reveal=contact` (each unmasked view is audited)."""
    async with request.app[RUNTIME].pool.acquire() as conn:
        view = await views.ticket_view(conn, path_int(request), current_user(request),
                                       reveal=request.query.get("reveal") == "contact", remote_addr=request.remote)
    return json_response({"ticket": view})


@requires()
@api_doc(tags=TAGS, responses={200: "the append-only history, oldest first"})
async def history(request: web.Request) -> web.Response:
    """A ticket's history: who, when, from-state, to-state, note, detail."""
    items = await views.history(request.app[RUNTIME].pool, path_int(request), current_user(request))
    return json_response({"items": items})


@requires()
@api_doc(tags=TAGS, body=ACTION_BODY, responses={
    200: "the ticket after the action", 400: "bad input (field named)", 403: "role or unit not allowed",
    409: "illegal transition: current_state and allowed_actions in the error"})
async def act(request: web.Request) -> web.Response:
    """Take an action on a ticket (派单, 签收, 退回, 延期, 回复, 回访, 督办, 催办, 并单 ...).

    The pair (current state, action) must be in the transition table
    (`GET /api/v1/tickets/transitions`); otherwise 409 names the current state
    and the allowed actions. Concurrent actions on one ticket cannot both win.
    """
    user = current_user(request)
    body = await read_json(request)
    ticket_id = path_int(request)
    async with request.app[RUNTIME].pool.acquire() as conn:
        if not await views._visible(conn, ticket_id, user):
            raise NotFound(f"没有工单 {ticket_id}", field="id", value=ticket_id)
        result = await apply(conn, ticket_id, request.match_info["action"], user, body,
                             calendars=request.app[RUNTIME].calendars, files=request.app[RUNTIME].files)
        view = await views.ticket_view(conn, ticket_id, user)
    return json_response({"result": result, "ticket": view})


@requires(*FRONT)
@api_doc(tags=TAGS, responses={200: "master ticket, its answer and every caller to call back (audited)"})
async def callback_plan(request: web.Request) -> web.Response:
    """The callback plan (回访): the master ticket's answer and the callers of every merged ticket."""
    async with request.app[RUNTIME].pool.acquire() as conn:
        plan = await views.callback_plan(conn, path_int(request), current_user(request), remote_addr=request.remote)
    return json_response(plan)


@requires()
@api_doc(tags=TAGS, responses={200: "states, actions and the allowed transitions with their roles"})
async def transitions(request: web.Request) -> web.Response:
    """The ticket state machine: every allowed (state, action) → next state and the roles allowed."""
    items = [{"state": s, "action": a, "to": t.to if t.to != "=" else s, "roles": sorted(t.roles),
              "unit_leg": t.unit_leg} for (s, a), t in sorted(TRANSITIONS.items())]
    return json_response({"states": STATE_NAMES_ZH, "actions": ACTION_NAMES_ZH, "transitions": items})


@requires()
@api_doc(tags=TAGS, responses={200: "the configured reasons for 不予受理 and 转其他渠道"})
async def refusal_reasons(request: web.Request) -> web.Response:
    """Reason codes for closing a ticket without handling (不予受理 / 转其他渠道)."""
    reasons = refusals.reasons_for(request.app[RUNTIME].files)
    return json_response({"items": refusals.reasons_json(reasons), "outcomes": refusals.OUTCOME_NAMES_ZH})


@requires("dispatcher", "supervisor", "admin")
@api_doc(tags=TAGS, query={"from": {"type": "string", "format": "date-time"},
                           "to": {"type": "string", "format": "date-time"}, "line": {"type": "string"}},
         responses={200: "counts of 不予受理 and 转其他渠道 by reason in [from, to) (default: this month)"})
async def refusal_report(request: web.Request) -> web.Response:
    """How many tickets were refused (不予受理) or sent to another channel (转其他渠道), by reason."""
    rt = request.app[RUNTIME]
    tz = rt.settings.tz
    start = query_datetime(request, "from")
    end = query_datetime(request, "to")
    async with rt.pool.acquire() as conn:
        if start is None or end is None:
            now = (await conn.fetchval("SELECT now()")).astimezone(tz)
            month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            start = start or month
            end = end or (month.replace(year=month.year + 1, month=1) if month.month == 12
                          else month.replace(month=month.month + 1))
        start = start if start.tzinfo else start.replace(tzinfo=tz)
        end = end if end.tzinfo else end.replace(tzinfo=tz)
        if end <= start:
            raise ValidationError(f"结束时间 to {end.isoformat()} 须晚于开始时间 from {start.isoformat()}", field="to",
                                  value=request.query.get("to"), code="out_of_range")
        report = await refusals.refusal_counts(conn, start=start, end=end, hotline_number=request.query.get("line"),
                                               reasons=refusals.reasons_for(rt.files))
    return json_response(report)


@requires()
@api_doc(tags=["categories"], query={"all": {"type": "boolean", "description": "include inactive"}},
         responses={200: "the category tree with each node's default unit"})
async def categories(request: web.Request) -> web.Response:
    """The category code table (诉求分类) as a tree, with the dispatch catalogue's default units."""
    tree = await category_tree(request.app[RUNTIME].pool, include_inactive=query_bool(request, "all"))
    return json_response({"items": tree})


CATEGORY_BODY = {"type": "object", "properties": {
    "code": {"type": "string"}, "name": {"type": "string"}, "parent_code": {"type": ["string", "null"]},
    "active": {"type": "boolean"}}}


@requires("supervisor", "admin")
@api_doc(tags=["categories"], body=CATEGORY_BODY, responses={201: "created", 409: "code exists"})
async def category_create(request: web.Request) -> web.Response:
    """Add a category (code, name, parent_code)."""
    body = await read_json(request)
    code = body.pop("code", None)
    if not isinstance(code, str) or not code:
        raise ValidationError(f"请填写分类代码 code，收到 {code!r}", field="code", value=code, code="missing_field")
    async with request.app[RUNTIME].pool.acquire() as conn:
        row = await save_category(conn, code, body, create=True)
    return json_response({"category": row}, status=201)


@requires("supervisor", "admin")
@api_doc(tags=["categories"], body=CATEGORY_BODY, responses={200: "updated", 404: "no such category"})
async def category_update(request: web.Request) -> web.Response:
    """Rename, move (no cycles) or deactivate a category."""
    body = await read_json(request)
    async with request.app[RUNTIME].pool.acquire() as conn:
        row = await save_category(conn, request.match_info["code"], body, create=False)
    return json_response({"category": row})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/tickets", list_)
    app.router.add_post("/api/v1/tickets", create)
    app.router.add_get("/api/v1/tickets/transitions", transitions)
    app.router.add_get("/api/v1/tickets/refusal-reasons", refusal_reasons)
    app.router.add_get("/api/v1/tickets/refusals", refusal_report)
    app.router.add_get("/api/v1/tickets/{id:\\d+}", detail)
    app.router.add_get("/api/v1/tickets/{id:\\d+}/history", history)
    app.router.add_get("/api/v1/tickets/{id:\\d+}/callback-plan", callback_plan)
    app.router.add_post("/api/v1/tickets/{id:\\d+}/actions/{action}", act)
    app.router.add_get("/api/v1/categories", categories)
    app.router.add_post("/api/v1/categories", category_create)
    app.router.add_patch("/api/v1/categories/{code}", category_update)
