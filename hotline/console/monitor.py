"""A supervisor monitors an agent's live call (监听 / 耳语 / 强插) or hangs a call up (强拆):
the checks, the PBX request (:mod:`hotline.calls.monitor`) and the audit row every
attempt leaves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from hotline.auth import audit
from hotline.auth.model import User
from hotline.calls import store
from hotline.calls.members import PbxRefused, PbxUnreachable
from hotline.calls.monitor import (
    CallControl,
    CallControlFailed,
    MonitorMode,
    hangup_reason,
    parse_mode,
    spy_request,
)
from hotline.console.seats import no_such_seat
from hotline.errors import Conflict, NotFound, ValidationError

AUDIT_ACTION = "call.monitored"
HANGUP_AUDIT = "call.hung_up_by_supervisor"
LIVE_STATES = ("ringing", "queued", "answered", "transferred")


@dataclass(frozen=True, slots=True)
class Monitoring:
    user_id: int  # the agent (or expert) monitored
    call_id: int
    mode: MonitorMode
    phone: str  # the supervisor's phone, which rings
    agent_name: str

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "call_id": self.call_id, "mode": self.mode.value,
                "mode_name": self.mode.name_zh, "phone": self.phone,
                "message": f"正在呼叫您的座席电话 {self.phone}，接听后开始{self.mode.name_zh} {self.agent_name} 的通话"}


async def start_monitor(
    pool: asyncpg.Pool, pbx: CallControl | None, *, by: User, agent_user_id: int, mode: object,
    remote_addr: str | None = None,
) -> Monitoring:
    """Ring ``by``'s seat phone to monitor ``agent_user_id``'s current call. Refused
    (nothing rings, nothing is audited) when the mode is unknown, the agent is not on a
    call or has no phone, the supervisor has no phone, or no PBX is configured; every
    request the PBX was asked is audited (``call.monitored``), accepted or not."""
    chosen = parse_mode(mode)
    agent = await pool.fetchrow(
        """SELECT u.id, u.username, coalesce(u.display_name, u.username) AS name, u.roles,
                  coalesce(s.state, 'offline') AS state, s.interface, s.current_call_id, c.call_uid
             FROM users u LEFT JOIN seats s ON s.user_id = u.id LEFT JOIN calls c ON c.id = s.current_call_id
            WHERE u.id = $1 AND u.roles && ARRAY['agent', 'expert']""", agent_user_id)
    if agent is None:
        raise no_such_seat(agent_user_id)
    if agent_user_id == by.id:
        raise ValidationError(f"不能{chosen.name_zh}自己的通话", field="user_id", code="own_call", value=agent_user_id)
    if agent["state"] != "on_call" or agent["current_call_id"] is None:
        raise Conflict(f"{agent['name']} 当前不在通话中，无法{chosen.name_zh}", field="user_id",
                       code="not_on_call", value=agent_user_id)
    if not agent["interface"]:
        raise Conflict(f"{agent['name']} 的座席未配置电话，无法{chosen.name_zh}", field="user_id",
                       code="agent_no_phone", value=agent_user_id)
    phone = await pool.fetchval("SELECT interface FROM seats WHERE user_id = $1", by.id)
    if not phone:
        raise Conflict("您的座席未配置电话，无法监听：请管理员在“座席电话”中为您分配", field="interface",
                       code="no_phone")
    if pbx is None:
        raise PbxUnreachable("未接入电话系统（未配置 [calls] ami_host），无法监听", code="pbx_unavailable")
    done = Monitoring(agent_user_id, agent["current_call_id"], chosen, phone, agent["name"])
    request = spy_request(phone=phone, target=agent["interface"], mode=chosen, agent_name=agent["name"],
                          call_id=done.call_id, call_uid=agent["call_uid"])
    failure: CallControlFailed | None = None
    try:
        await pbx.spy(request)
    except CallControlFailed as exc:
        failure = exc
    await audit(pool, AUDIT_ACTION, user=by, object_type="call", object_id=done.call_id, detail={
        "agent_user_id": agent_user_id, "agent": agent["username"], "mode": chosen.value, "phone": phone,
        "spied_interface": agent["interface"], "outcome": "ringing" if failure is None else "failed",
        **({"error": str(failure)[:200]} if failure is not None else {})}, remote_addr=remote_addr)
    if failure is not None and failure.refused:
        raise PbxRefused(f"电话系统拒绝了{chosen.name_zh}请求：{failure}")
    if failure is not None:
        raise PbxUnreachable(f"电话系统无法连接，{chosen.name_zh}未开始：{failure}")
    return done


async def hang_up_call(
    pool: asyncpg.Pool, pbx: CallControl | None, *, by: User, call_id: int, reason: object,
    remote_addr: str | None = None,
) -> dict[str, Any]:
    """强拆: end a live call from the supervisor's console (an abusive caller, a call stuck
    on a line). Asterisk hangs the citizen's channel up; the call then ends through the
    usual flows (hangup handler, AMI, CDR), and its record notes who ended it and why.
    Refused when the call is not live or has no channel on record, or without a PBX;
    audited (``call.hung_up_by_supervisor``), accepted by Asterisk or not."""
    why = hangup_reason(reason)
    call = await pool.fetchrow("SELECT id, state, ended_at, channel FROM calls WHERE id = $1", call_id)
    if call is None:
        raise NotFound(f"没有编号为 {call_id} 的来电", field="id", value=call_id)
    if call["ended_at"] is not None or call["state"] not in LIVE_STATES:
        raise Conflict(f"来电 {call_id} 已结束，无需强拆", field="id", code="not_live", value=call_id)
    if not call["channel"]:
        raise Conflict(f"来电 {call_id} 没有记录通道，无法强拆", field="id", code="no_channel", value=call_id)
    if pbx is None:
        raise PbxUnreachable("未接入电话系统（未配置 [calls] ami_host），无法强拆", code="pbx_unavailable")
    failure: CallControlFailed | None = None
    try:
        await pbx.hang_up(call["channel"])
    except CallControlFailed as exc:
        failure = exc
    async with pool.acquire() as conn, conn.transaction():
        if failure is None:
            await store.note_on_call(conn, call_id, [{"step": "supervisor_hangup", "by": by.id, "reason": why}])
        await audit(conn, HANGUP_AUDIT, user=by, object_type="call", object_id=call_id, detail={
            "reason": why, "channel": call["channel"], "outcome": "hung_up" if failure is None else "failed",
            **({"error": str(failure)[:200]} if failure is not None else {})}, remote_addr=remote_addr)
    if failure is not None and failure.refused:
        raise PbxRefused(f"电话系统拒绝了强拆：{failure}")
    if failure is not None:
        raise PbxUnreachable(f"电话系统无法连接，未能强拆：{failure}")
    return {"call_id": call_id, "outcome": "hung_up", "message": f"已强拆来电 {call_id}"}
