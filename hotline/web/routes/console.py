"""The web seat console: its pages and assets, the WebSocket, seat state,
screen-pop, the wallboard and the expert seat's inbox.

Pages and assets are public on purpose: they are an empty shell (HTML, CSS, JS,
the vendored ECharts) with no data; every piece of data is fetched through the
authenticated APIs below or pushed over the session-authenticated WebSocket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from hotline.auth.model import ROLE_NAMES_ZH
from hotline.calls.queries import is_on_call
from hotline.console import screenpop, seats
from hotline.console.hub import Client, ConsoleHub
from hotline.errors import Forbidden, NotFound, ValidationError
from hotline.events import Topic
from hotline.telephony.pbx import seat_pbx
from hotline.tickets import views
from hotline.tickets.intake import open_ticket
from hotline.web.access import api_doc, current_user, public, requires
from hotline.web.keys import RUNTIME, SESSION
from hotline.web.params import path_int, query_bool
from hotline.web.util import dumps, json_response, read_json

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PAGES = ("login", "agent", "expert", "liaison", "supervisor", "admin")
HUB = web.AppKey("console_hub", ConsoleHub)
TAGS = ["console"]


# -- pages ---------------------------------------------------------------------------
@public  # an empty page shell; data comes from the authenticated APIs
async def root(request: web.Request) -> web.StreamResponse:
    """Redirect to the console."""
    raise web.HTTPFound("/console/")


@public  # an empty page shell; data comes from the authenticated APIs
async def page(request: web.Request) -> web.StreamResponse:
    """A console page (HTML shell, Chinese)."""
    name = request.match_info.get("page") or "login"
    if name not in PAGES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC_DIR / f"{name}.html", headers={"Cache-Control": "no-store"})


# -- WebSocket -----------------------------------------------------------------------
@requires()
@api_doc(tags=TAGS, responses={101: "WebSocket: JSON messages screen_pop, transfer, transfer_outcome, "
                                    "call_updated, seat, ticket, wallboard"})
async def websocket(request: web.Request) -> web.StreamResponse:
    """Console push channel (WebSocket, session cookie).

    Messages are JSON objects with a ``type``. The browser sends nothing but pings."""
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise Forbidden("拒绝来自其他站点的 WebSocket 连接")
    hub = request.app[HUB]
    await hub.ensure_started()
    user = current_user(request)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    client = Client(ws, user, request[SESSION].token_hash)
    hub.add(client)
    try:
        await ws.send_str(dumps({"type": "hello", "user": user.to_json()}))
        if user.has_role("supervisor"):
            await ws.send_str(dumps({"type": "wallboard", "wallboard": await hub.wallboard_data()}))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str('{"type":"pong"}')
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        hub.remove(client)
    return ws


# -- meta ------------------------------------------------------------------------------
@requires()
@api_doc(tags=TAGS)
async def meta(request: web.Request) -> web.Response:
    """Console vocabulary: seat states, break reasons, roles and modes in Chinese."""
    return json_response({
        "seat_states": seats.STATE_NAMES_ZH,
        "break_reasons": list(seats.BREAK_REASONS),
        "roles": ROLE_NAMES_ZH,
        "modes": screenpop.MODE_NAMES_ZH,
        "timezone": request.app[RUNTIME].settings.timezone,
    })


@requires()
@api_doc(tags=TAGS)
async def units(request: web.Request) -> web.Response:
    """Handling units for the dispatch picker (code, name, kind), departments first."""
    rows = await request.app[RUNTIME].pool.fetch(
        "SELECT code, name, parent_code FROM units WHERE active ORDER BY parent_code NULLS FIRST, code")
    return json_response({"items": [dict(r) for r in rows]})


# -- seat state -----------------------------------------------------------------------
@requires("agent", "expert")
@api_doc(tags=TAGS)
async def seat_get(request: web.Request) -> web.Response:
    """My seat state and time in state."""
    seat = await seats.get_seat(request.app[RUNTIME].pool, current_user(request).id)
    return json_response({"seat": seat, "server_time": await request.app[RUNTIME].pool.fetchval("SELECT now()")})


@requires("agent", "expert")
@api_doc(tags=TAGS, body={"type": "object", "required": ["state"], "properties": {
    "state": {"enum": ["ready", "after_call", "break", "offline"]},
    "reason": {"type": "string", "description": "break reason (用餐, 休息, 培训, 会议, 其他)"}}},
    responses={200: "the new seat; pbx_updated false and a note when going offline could not reach Asterisk",
               409: "change not allowed from the current state",
               502: "Asterisk refused the queue membership change (pbx_refused): state unchanged",
               503: "Asterisk unreachable (pbx_unreachable): state unchanged"})
async def seat_put(request: web.Request) -> web.Response:
    """Change my seat state (ready, after-call work, break with a reason, offline); with
    a PBX configured, my phone's queue membership follows in Asterisk."""
    body = await read_json(request)
    state = body.get("state")
    if not isinstance(state, str):
        raise ValidationError("请提供座席状态", field="state")
    runtime = request.app[RUNTIME]
    change = await seats.change_state(runtime.pool, current_user(request).id, state,
                                      reason=body.get("reason"), pbx=seat_pbx(runtime))
    return json_response(change)


@requires("supervisor")
@api_doc(tags=TAGS)
async def seats_list(request: web.Request) -> web.Response:
    """Every agent and expert seat with state and time in state."""
    return json_response({"items": await seats.list_seats(request.app[RUNTIME].pool)})


# -- calls ------------------------------------------------------------------------------
@requires("agent", "expert", "supervisor")
@api_doc(tags=TAGS, query={"text": {"type": "string", "description": "words for knowledge suggestions"}})
async def call_pop(request: web.Request) -> web.Response:
    """Screen-pop of a call: line and mode, masked caller, history, open tickets, suggestions
    (for the agent it was offered to or is on it, an expert it was transferred to, supervisors)."""
    text = request.query.get("text") or None
    call_id = path_int(request, "id")
    await _require_on_call(request, call_id, "查看这通来电的弹屏")
    return json_response(await screenpop.build(request.app[RUNTIME], call_id, text=text))


async def _require_on_call(request: web.Request, call_id: int, doing: str) -> None:
    """Refuses (403) a user who is not on the call and not a supervisor; 404 without the call."""
    user = current_user(request)
    if user.has_role("supervisor"):
        return
    on_call = await is_on_call(request.app[RUNTIME].pool, call_id, user.id)
    if on_call is None:
        raise NotFound(f"来电 {call_id} 不存在", field="id")
    if not on_call:
        raise Forbidden(f"只有接听该来电的话务员、转接到的专家座席或班长可以{doing}", field="id")


@requires("agent", "expert", "supervisor")
@api_doc(tags=TAGS, responses={200: "the full caller number (audited)"})
async def call_reveal(request: web.Request) -> web.Response:
    """Show the caller's full number (written to the audit log)."""
    number = await screenpop.reveal_number(request.app[RUNTIME], path_int(request, "id"), current_user(request),
                                           remote_addr=request.remote)
    return json_response({"caller_number": number})


@requires("agent", "expert")
@api_doc(tags=TAGS)
async def current_call(request: web.Request) -> web.Response:
    """The call my seat is on (screen-pop again after a page reload), or null."""
    runtime = request.app[RUNTIME]
    seat = await seats.get_seat(runtime.pool, current_user(request).id)
    if seat.current_call_id is None:
        return json_response({"pop": None, "seat": seat})
    return json_response({"pop": await screenpop.build(runtime, seat.current_call_id), "seat": seat})


OPEN_TICKET_BODY = {"type": "object", "required": ["subject"], "properties": {
    "subject": {"type": "string", "maxLength": 200}, "facts": {"type": "string"}, "location": {"type": "string"},
    "occurred_at": {"type": "string", "format": "date-time"}, "caller_name": {"type": "string"},
    "contact_number": {"type": "string"}, "category_code": {"type": "string"}, "kind": {"type": "string"},
    "urgency": {"type": "string"}, "confidential": {"type": "boolean"},
    "dispatch": {"type": "object", "description": "dispatch at once: {unit_code}"},
    "close_direct": {"type": "object", "description": "close at once: {answer, kb_article_id?}"}}}


@requires("agent", "expert", "dispatcher", "supervisor")
@api_doc(tags=TAGS, body=OPEN_TICKET_BODY, responses={201: "the ticket (tickets API view)",
                                                      403: "not on this call (its agent, expert or a supervisor)"})
async def call_ticket(request: web.Request) -> web.Response:
    """Open a ticket on a call: line, caller number and call link come from the call.

    The browser only ever holds the masked number; the server copies the caller's
    number from the call record, then dispatches or closes it if asked."""
    user = current_user(request)
    body = await read_json(request)
    call_id = path_int(request, "id")
    runtime = request.app[RUNTIME]
    # the ticket carries the caller's full number (revealable on the ticket): only
    # those who may see it on the call may open one from it
    await _require_on_call(request, call_id, "为这通来电登记工单")
    async with runtime.pool.acquire() as conn:
        ticket_id = await open_ticket(conn, body, user, source="console", calendars=runtime.calendars,
                                      files=runtime.files, call_id=call_id)
        view = await views.ticket_view(conn, ticket_id, user)
    return json_response({"ticket": view}, status=201)


# -- wallboard -----------------------------------------------------------------------
@requires("supervisor")
@api_doc(tags=TAGS)
async def wallboard_get(request: web.Request) -> web.Response:
    """Wallboard snapshot (the page gets updates over the WebSocket)."""
    return json_response(await request.app[HUB].wallboard_data())


# -- expert inbox ---------------------------------------------------------------------
INBOX_ACTIONS = {"accept": "accepted", "answer": "answered", "return": "returned", "close": "closed"}


@requires("expert")
@api_doc(tags=TAGS, query={"all": {"type": "boolean", "description": "include handled transfers"}})
async def inbox_list(request: web.Request) -> web.Response:
    """Calls transferred to me, newest first, with the ticket so far."""
    runtime = request.app[RUNTIME]
    rows = await runtime.pool.fetch(
        """SELECT i.id, i.call_id, i.ticket_id, i.state, i.answer, i.created_at, i.updated_at, i.detail,
                  c.hotline_number, c.state AS call_state, u.display_name AS from_name
             FROM console_inbox i
             LEFT JOIN calls c ON c.id = i.call_id
             LEFT JOIN users u ON u.id = i.from_user_id
            WHERE i.user_id = $1 AND ($2 OR i.state IN ('new', 'accepted'))
            ORDER BY i.created_at DESC LIMIT 100""",
        current_user(request).id, query_bool(request, "all"),
    )
    tickets = {t["id"]: t for t in await screenpop.ticket_summaries(
        runtime, sorted({r["ticket_id"] for r in rows if r["ticket_id"]}))}
    items = [dict(r) | {"line": screenpop.line_info(runtime, r["hotline_number"]) if r["hotline_number"] else None,
                        "ticket": tickets.get(r["ticket_id"])} for r in rows]
    return json_response({"items": items})


@requires("expert")
@api_doc(tags=TAGS, body={"type": "object", "required": ["action"], "properties": {
    "action": {"enum": list(INBOX_ACTIONS)}, "answer": {"type": "string"}}})
async def inbox_act(request: web.Request) -> web.Response:
    """Accept a transferred call, record my answer, return the call or close."""
    body = await read_json(request)
    action = body.get("action")
    if action not in INBOX_ACTIONS:
        raise ValidationError(f"操作必须是：{'、'.join(INBOX_ACTIONS)}", field="action", value=action)
    answer = body.get("answer")
    if action == "answer" and (not isinstance(answer, str) or not answer.strip()):
        raise ValidationError("请填写专家答复", field="answer")
    row = await request.app[RUNTIME].pool.fetchrow(
        """UPDATE console_inbox SET state = $3, answer = coalesce($4, answer), updated_at = now()
            WHERE id = $1 AND user_id = $2 RETURNING id, state, answer, call_id, ticket_id""",
        path_int(request, "id"), current_user(request).id, INBOX_ACTIONS[action],
        answer.strip() if isinstance(answer, str) else None,
    )
    if row is None:
        raise NotFound("您的转入来电中没有这一条", field="id")
    if action == "return":
        # the agent who transferred the call sees that the expert handed it back
        from hotline.events import publish

        await publish(request.app[RUNTIME].pool, Topic.CONSOLE_EXPERT_RETURNED,
                      {"call_id": row["call_id"], "expert_user_id": current_user(request).id})
    return json_response({"item": dict(row)})


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    app[HUB] = ConsoleHub(app[RUNTIME])
    yield
    await app[HUB].close()


async def _close_sockets(app: web.Application) -> None:
    if HUB in app:
        await app[HUB].close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_hub_ctx)
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/", root)
    app.router.add_get("/console/", page)
    app.router.add_get("/console/{page}", page)
    app.router.add_static("/static/", STATIC_DIR, name="static")
    app.router.add_get("/api/v1/console/ws", websocket)
    app.router.add_get("/api/v1/console/meta", meta)
    app.router.add_get("/api/v1/console/units", units)
    app.router.add_get("/api/v1/console/seat", seat_get)
    app.router.add_put("/api/v1/console/seat", seat_put)
    app.router.add_get("/api/v1/console/seats", seats_list)
    app.router.add_get("/api/v1/console/current", current_call)
    app.router.add_get("/api/v1/console/calls/{id}/pop", call_pop)
    app.router.add_post("/api/v1/console/calls/{id}/reveal", call_reveal)
    app.router.add_post("/api/v1/console/calls/{id}/ticket", call_ticket)
    app.router.add_get("/api/v1/console/wallboard", wallboard_get)
    app.router.add_get("/api/v1/console/inbox", inbox_list)
    app.router.add_post("/api/v1/console/inbox/{id}", inbox_act)
