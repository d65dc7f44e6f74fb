"""Calls over HTTP: the call list, one call with its decisions and transfer attempts,
and the console's transfer buttons (``POST /api/v1/calls/{id}/transfer``); a supervisor's
强拆 (``POST /api/v1/calls/{id}/hangup``).

Caller numbers are masked unless the viewer needs them (the agent or expert on
that call, a supervisor) and asks with ``?unmask=1``; every unmasked view is
audited. Thin: the domain is :mod:`hotline.calls`; the channel is moved by
:mod:`hotline.calls.transfer` (the PBX moves the channel through the runtime's mover).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from hotline.auth import audit
from hotline.auth.model import User
from hotline.calls.context import CallContext
from hotline.calls.queries import call_json, get_call, is_on_call, list_calls, transfer_attempts
from hotline.calls.recordings import find_recording
from hotline.calls.settings import EXPERT_FALLBACKS, CallSettings
from hotline.calls.transfer import KINDS, transfer_live_call
from hotline.console.monitor import hang_up_call
from hotline.errors import Forbidden, NotFound, ValidationError
from hotline.telephony.pbx import call_control
from hotline.web.access import api_doc, current_user, requires
from hotline.web.caller_filter import caller_filter
from hotline.web.keys import RUNTIME
from hotline.web.params import paging, path_int, query_bool, query_datetime, query_int
from hotline.web.util import json_response, read_json

TAGS = ["calls"]
READERS = ("agent", "expert", "dispatcher", "supervisor", "admin")
STATES = ("ringing", "queued", "answered", "transferred", "completed", "abandoned", "failed")
CALL_SCHEMA = {"type": "object", "description": "a call record (caller number masked unless unmasked)"}


@requires(*READERS)
@api_doc(
    tags=TAGS,
    query={
        "hotline_number": {"type": "string", "description": "the line dialled"},
        "state": {"enum": list(STATES)},
        "route": {"type": "string", "description": "platform, merged, dual, subcenter, blocked, out_of_hours, fallback"},
        "agent_id": {"type": "integer"},
        "caller": {"type": "string", "description": "masked caller number (138****5678); a full number "
                   "(any form, normalised) for supervisors and admins only, audited"},
        "since": {"type": "string", "format": "date-time"},
        "until": {"type": "string", "format": "date-time"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        "offset": {"type": "integer", "minimum": 0, "default": 0},
    },
    responses={200: {"description": "{items, total, limit, offset}; caller numbers masked"}},
)
async def calls_list(request: web.Request) -> web.Response:
    """List calls, most recent first (caller numbers masked)."""
    q = request.query
    state = q.get("state") or None  # checked against the declared enum (hotline.web.params)
    page = paging(request, default=50, high=500)
    limit, offset = page.limit, page.offset
    agent_id = query_int(request, "agent_id", None, high=2**62)
    caller = await caller_filter(request, audit_action="calls.search_by_caller")
    rows, total = await list_calls(
        request.app[RUNTIME].pool, hotline_number=q.get("hotline_number") or None, state=state,
        route=q.get("route") or None, agent_id=agent_id, caller_number=caller.number,
        caller_pattern=caller.pattern,
        since=query_datetime(request, "since"), until=query_datetime(request, "until"), limit=limit, offset=offset,
    )
    items = [call_json(r) for r in rows]
    await _mark_recordings(request, items)
    return json_response({"items": items, "total": total, "limit": limit, "offset": offset})


def _recordings_root(request: web.Request) -> Path | None:
    directory = CallSettings.from_settings(request.app[RUNTIME].settings).recordings_dir
    return Path(directory) if directory else None


async def _mark_recordings(request: web.Request, items: list[dict[str, Any]]) -> None:
    """``recording``: whether the call has a recording file (a few ``stat``s each, off the
    loop: the directory may be on shared storage)."""
    root = _recordings_root(request)
    if root is None:
        for item in items:
            item["recording"] = False
        return
    found = await asyncio.to_thread(
        lambda: [find_recording(root, item["call_uid"], item["started_at"]) is not None for item in items])
    for item, has in zip(items, found, strict=True):
        item["recording"] = has


async def _the_call(request: web.Request) -> tuple[User, Any, asyncpg.Record]:
    """(who asks, the pool, the call the path names); 404 when there is no such call."""
    call_id = path_int(request)
    pool = request.app[RUNTIME].pool
    row = await get_call(pool, call_id)
    if row is None:
        raise NotFound(f"没有编号为 {call_id} 的来电", field="id")
    return current_user(request), pool, row


async def _may_unmask(request: web.Request, user: User, call: Any) -> bool:
    """The caller's number and the call's recording: the agent or expert on the call,
    supervisors and admins."""
    if user.has_role("supervisor", "admin"):
        return True
    return bool(await is_on_call(request.app[RUNTIME].pool, call["id"], user.id))


@requires(*READERS)
@api_doc(
    tags=TAGS,
    query={"unmask": {"type": "boolean", "description": "show the caller number (audited); for the agent "
                      "or expert on the call and supervisors"}},
    responses={200: {"description": "the call, its decisions and transfer attempts", "schema": CALL_SCHEMA},
               403: "unmask refused", 404: "no such call"},
)
async def call_detail(request: web.Request) -> web.Response:
    """One call with every routing decision and its transfer attempts."""
    user, pool, row = await _the_call(request)
    call_id = row["id"]
    unmask = query_bool(request, "unmask")
    if unmask:
        if not await _may_unmask(request, user, row):
            raise Forbidden("只有接听该来电的话务员、专家座席或班长可以查看来电号码",
                            field="unmask")
        await audit(pool, "call.view_unmasked", user=user, object_type="call", object_id=call_id,
                    detail={"hotline_number": row["hotline_number"]}, remote_addr=request.remote)
    body = call_json(row, unmasked=unmask)
    body["transfer_attempts"] = await transfer_attempts(pool, call_id)
    await _mark_recordings(request, [body])
    return json_response(body)


@requires(*READERS)
@api_doc(
    tags=TAGS,
    responses={200: {"description": "the call's recording (全程录音), audio/wav; HTTP Range requests for seeking; "
                                    "each play from the start is audited"},
               403: "not on this call (only its agent or expert, a supervisor or an admin may listen)",
               404: "no such call, or no recording of it"},
)
async def call_recording(request: web.Request) -> web.StreamResponse:
    """Listen to a call's recording."""
    user, pool, row = await _the_call(request)
    call_id = row["id"]
    if not await _may_unmask(request, user, row):
        raise Forbidden("只有接听该来电的话务员、专家座席、班长或系统管理员可以收听录音", field="id")
    root = _recordings_root(request)
    path = None if root is None else await asyncio.to_thread(find_recording, root, row["call_uid"], row["started_at"])
    if path is None:
        raise NotFound(f"来电 {call_id} 没有录音", field="id")
    wanted = request.headers.get("Range", "")
    if not wanted or wanted.replace(" ", "").startswith("bytes=0-"):  # a play from the start, not a seek
        await audit(pool, "call.recording_played", user=user, object_type="call", object_id=call_id,
                    detail={"hotline_number": row["hotline_number"], "file": path.name},
                    remote_addr=request.remote)
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "private, no-store"})


@requires("agent", "expert", "supervisor")
@api_doc(
    tags=TAGS,
    body={
        "type": "object",
        "required": ["kind"],
        "properties": {
            "kind": {"enum": list(KINDS), "description": "expert: the line's expert-seat pool (专家座席); "
                     "subcenter: the line's sub-centre (分中心)"},
            "target": {"type": "string", "description": "the dual line (expert) or sub-centre line to transfer "
                       "to; default: the call's own line"},
            "fallback": {"enum": list(EXPERT_FALLBACKS), "description": "expert only, when no expert is free: "
                         "wait in the pool queue, or a callback ticket (default from [calls] expert_fallback)"},
        },
    },
    responses={
        200: {"description": "{call_id, kind, outcome (connecting|dialling|queued|callback_ticket|failed), "
                             "attempt_id, expert_user_id, ticket_id, target, reason, channel_moved, note}"},
        400: "bad kind/target", 403: "not on this call (only its agent, an expert it was transferred to "
        "or a supervisor may transfer it)", 404: "no such call", 409: "the call is not live",
    },
)
async def call_transfer(request: web.Request) -> web.Response:
    """Transfer a live call to an expert seat or a sub-centre (the console's transfer buttons)."""
    user = current_user(request)
    call_id = path_int(request)
    body = await read_json(request)
    kind = body.get("kind")
    if kind not in KINDS:
        raise ValidationError(f"kind 必须是 {list(KINDS)} 之一，收到 {kind!r}", field="kind")
    target = body.get("target")
    if target is not None and not isinstance(target, str):
        raise ValidationError("target 必须是文本形式的热线号码", field="target")
    fallback = body.get("fallback")
    if fallback is not None and (kind != "expert" or fallback not in EXPERT_FALLBACKS):
        raise ValidationError(f"fallback 只用于转专家座席，必须是 {list(EXPERT_FALLBACKS)} 之一",
                              field="fallback")
    if not user.has_role("supervisor"):
        on_call = await is_on_call(request.app[RUNTIME].pool, call_id, user.id)
        if on_call is None:
            raise NotFound(f"没有编号为 {call_id} 的来电", field="id")
        if not on_call:
            raise Forbidden("只有正在接听该来电的话务员、被转接的专家座席或班长可以转接这通来电", field="id")
    runtime = request.app[RUNTIME]
    ctx = CallContext.for_runtime(runtime)
    mover = runtime.channel_mover(ctx.calls) if runtime.channel_mover else None
    result = await transfer_live_call(ctx, call_id=call_id, kind=kind, target=target or None,
                                      fallback=fallback, requested_by=user.id, mover=mover)
    return json_response(result)


@requires("supervisor")
@api_doc(tags=TAGS, body={"type": "object", "required": ["reason"], "properties": {
    "reason": {"type": "string", "description": "why (骚扰电话, 恶意占线...; at most 200 characters)"}}},
    responses={200: "Asterisk hung the citizen's channel up (call_id, outcome, message)",
               400: "no reason", 404: "no such call", 409: "the call has ended (not_live) or has no channel",
               502: "the PBX refused", 503: "no PBX configured or reachable"})
async def call_hangup(request: web.Request) -> web.Response:
    """强拆: end a live call (audited as call.hung_up_by_supervisor; the call's record notes it)."""
    call_id = path_int(request)
    body = await read_json(request)
    runtime = request.app[RUNTIME]
    return json_response(await hang_up_call(runtime.pool, call_control(runtime), by=current_user(request),
                                            call_id=call_id, reason=body.get("reason"), remote_addr=request.remote))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/calls", calls_list)
    app.router.add_get("/api/v1/calls/{id}", call_detail)
    app.router.add_get("/api/v1/calls/{id}/recording", call_recording)
    app.router.add_post("/api/v1/calls/{id}/transfer", call_transfer)
    app.router.add_post("/api/v1/calls/{id}/hangup", call_hangup)
