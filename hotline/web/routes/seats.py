"""Seat phones and skills (座席电话、技能): admins give each agent and expert seat the
Asterisk interface of their phone and their skills; the seat's queue membership in
Asterisk follows (docs/TELEPHONY.md, "Seats and queue membership"). Supervisors get a
phone too: it rings when they monitor a call (监听/耳语/强插, "Monitoring a live call")."""

from __future__ import annotations

from aiohttp import web

from hotline.calls.members import SeatFacts, seat_queues
from hotline.calls.routing import skill_queue
from hotline.calls.settings import CallSettings
from hotline.console import seats
from hotline.console.monitor import start_monitor
from hotline.errors import ValidationError
from hotline.registry import Mode
from hotline.telephony.pbx import call_control, seat_pbx
from hotline.web.access import api_doc, current_user, requires
from hotline.web.keys import RUNTIME
from hotline.web.params import path_int
from hotline.web.util import json_response, read_json

TAGS = ["seats"]


@requires("admin", "supervisor")
@api_doc(tags=TAGS)
async def phones(request: web.Request) -> web.Response:
    """Every agent and expert seat with its phone, skills, state and the queues it joins
    when ready; and the skills the registry knows (with the skill queue a dual line gives)."""
    runtime = request.app[RUNTIME]
    registry = runtime.registry
    items = []
    for row in await seats.list_phones(runtime.pool):
        facts = SeatFacts(row["user_id"], row["username"], row["display_name"], frozenset(row["roles"]),
                                row["hotline_number"], row["state"], row["reason"], row["interface"],
                                tuple(row["skills"]))
        items.append(row | {"queues": list(seat_queues(facts, registry)) if row["interface"] else []})
    skills: dict[str, dict[str, object]] = {}
    for line in registry:
        entry = skills.setdefault(line.skill, {"skill": line.skill, "lines": [], "queue": None})
        entry["lines"].append({"number": line.number, "name": line.name})  # type: ignore[attr-defined]
        if line.mode is Mode.DUAL:
            entry["queue"] = skill_queue(line)
    return json_response({"items": items, "skills": sorted(skills.values(), key=lambda s: str(s["skill"]))})


@requires("admin")
@api_doc(tags=TAGS, body={"type": "object", "required": ["interface"], "properties": {
    "interface": {"type": ["string", "null"], "description": "Asterisk dial string TECH/resource, e.g. PJSIP/8001 "
                  "or Local/8001@agents (unique across seats; null takes the phone away)"},
    "skills": {"type": "array", "items": {"type": "string"}, "description": "skills of registry lines (hrss, ...)"}}},
    responses={200: "the seat's phone and skills, and whether Asterisk followed (pbx_updated, note)",
               400: "bad interface or unknown skill (field, value)", 404: "no such user",
               409: "the interface belongs to another seat"})
async def phone_put(request: web.Request) -> web.Response:
    """Give an agent, expert or supervisor seat its phone (and agents their skills); audited."""
    user_id = path_int(request, "user_id")
    body = await read_json(request)
    if "interface" not in body:
        raise ValidationError("请提供座席电话 interface（如 PJSIP/8001；null 表示收回）", field="interface")
    runtime = request.app[RUNTIME]
    change = await seats.set_phone(runtime.pool, runtime.registry, user_id, interface=body["interface"],
                                   skills=body.get("skills", []), by=current_user(request),
                                   remote_addr=request.remote, pbx=seat_pbx(runtime))
    return json_response(change)


@requires("supervisor")
@api_doc(tags=TAGS, body={"type": "object", "required": ["mode"], "properties": {
    "mode": {"type": "string", "enum": ["listen", "whisper", "barge"],
             "description": "listen 监听 (hear both sides), whisper 耳语 (the agent hears you), "
                            "barge 强插 (both hear you)"}}},
    responses={200: "your seat phone rang and you answered: the monitoring runs (call_id, mode, phone, "
                    "outcome answered; unknown when Asterisk did not report the answer), message",
               400: "unknown mode", 404: "no such agent or expert",
               409: "the agent is not on a call (not_on_call), has no phone (agent_no_phone), "
                    "you have no seat phone (no_phone), or your phone did not answer in "
                    "[calls] monitor_ring_seconds (phone_no_answer), was busy (phone_busy) or "
                    "could not be reached (phone_unavailable)",
               502: "the PBX refused (pbx_refused)", 503: "no PBX configured or reachable"})
async def monitor(request: web.Request) -> web.Response:
    """Monitor an agent's live call from your own seat phone: it rings, and the answer
    comes once you pick up (or it rang out). Audited as call.monitored and call.monitor_result."""
    user_id = path_int(request, "user_id")
    body = await read_json(request)
    runtime = request.app[RUNTIME]
    ring = CallSettings.from_settings(runtime.settings).monitor_ring_seconds
    done = await start_monitor(runtime.pool, call_control(runtime), by=current_user(request), agent_user_id=user_id,
                               mode=body.get("mode"), ring_seconds=ring, remote_addr=request.remote)
    return json_response(done.to_json())


@requires("supervisor")
@api_doc(tags=TAGS, body={"type": "object", "required": ["state"], "properties": {
    "state": {"enum": ["break", "offline"], "description": "break 强制小休 (with a reason), offline 强制签出"},
    "reason": {"type": "string", "description": "break reason (用餐, 休息, 培训, 会议, 其他)"}}},
    responses={200: "the seat; pbx_updated false and a note when going offline could not reach Asterisk",
               400: "unknown state or break without a reason", 404: "no such agent or expert",
               409: "not allowed from the seat's state (on a call, offline)",
               502: "Asterisk refused the membership change: state unchanged",
               503: "Asterisk unreachable: state unchanged"})
async def state_put(request: web.Request) -> web.Response:
    """Put an agent's or expert's seat on a break or sign it off (强制小休 / 强制签出),
    e.g. someone left the desk 置闲; their phone's queue membership follows (audited as seat.forced)."""
    user_id = path_int(request, "user_id")
    body = await read_json(request)
    state = body.get("state")
    if not isinstance(state, str):
        raise ValidationError("请提供座席状态 state（break 小休、offline 签出）", field="state", value=state)
    runtime = request.app[RUNTIME]
    change = await seats.change_state(runtime.pool, user_id, state, reason=body.get("reason"), pbx=seat_pbx(runtime),
                                      forced_by=current_user(request), remote_addr=request.remote)
    return json_response(change)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/seats/phones", phones)
    app.router.add_put("/api/v1/seats/{user_id}/phone", phone_put)
    app.router.add_post("/api/v1/seats/{user_id}/monitor", monitor)
    app.router.add_put("/api/v1/seats/{user_id}/state", state_put)
