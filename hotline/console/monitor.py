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
    RING_SECONDS,
    CallControl,
    CallControlFailed,
    MonitorMode,
    SpyOutcome,
    hangup_reason,
    parse_mode,
    spy_request,
)
from hotline.console.seats import no_such_seat
from hotline.errors import Conflict, NotFound, ValidationError

AUDIT_ACTION = "call.monitored"
#: what became of the ringing of the supervisor's phone (answered, no_answer, busy, ...)
RESULT_AUDIT = "call.monitor_result"
HANGUP_AUDIT = "call.hung_up_by_supervisor"
LIVE_STATES = ("ringing", "queued", "answered", "transferred")


@dataclass(frozen=True, slots=True)
class Monitoring:
    user_id: int  # the agent (or expert) monitored
    call_id: int
    mode: MonitorMode
    phone: str  # the supervisor's phone, which rang
    agent_name: str
    outcome: SpyOutcome

    @property
    def message(self) -> str:
        if self.outcome is SpyOutcome.ANSWERED:
            return f"已接通：您正在{self.mode.name_zh} {self.agent_name} 的通话（座席电话 {self.phone}）"
        # UNKNOWN: Asterisk took the request but did not say how it ended
        return f"已呼叫您的座席电话 {self.phone}，接听后开始{self.mode.name_zh} {self.agent_name} 的通话"

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "call_id": self.call_id, "mode": self.mode.value,
                "mode_name": self.mode.name_zh, "phone": self.phone, "outcome": self.outcome.value,
                "message": self.message}


def _not_started(outcome: SpyOutcome, mode: MonitorMode, phone: str, ring_seconds: int) -> Conflict:
    """The refusal the supervisor sees when their phone did not pick up."""
    what = {
        SpyOutcome.NO_ANSWER: f"您的座席电话 {phone} 未接听（响铃 {ring_seconds} 秒）",
        SpyOutcome.BUSY: f"您的座席电话 {phone} 正忙",
        SpyOutcome.UNAVAILABLE: f"无法接通您的座席电话 {phone}（未注册或线路拥塞）",
    }[outcome]
    return Conflict(f"{what}，{mode.name_zh}未开始", field="interface", code=f"phone_{outcome.value}", value=phone)


async def start_monitor(
    pool: asyncpg.Pool, pbx: CallControl | None, *, by: User, agent_user_id: int, mode: object,
    ring_seconds: int = RING_SECONDS, remote_addr: str | None = None,
) -> Monitoring:
    """Ring ``by``'s seat phone (up to ``ring_seconds``) to monitor ``agent_user_id``'s
    current call; returns once the phone answered (ChanSpy runs). Refused (nothing
    rings, nothing is audited) when the mode is unknown, the agent is not on a call or
    has no phone, the supervisor has no phone, or no PBX is configured. The request is
    audited before the phone rings (``call.monitored``: whoever answers it is on record,
    even if this node stops meanwhile) and its result after (``call.monitor_result``:
    answered, no_answer, busy, unavailable, unknown or failed); a phone that does not
    answer is refused with ``phone_no_answer`` / ``phone_busy`` / ``phone_unavailable``."""
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
    call_id = agent["current_call_id"]
    request = spy_request(phone=phone, target=agent["interface"], mode=chosen, agent_name=agent["name"],
                          call_id=call_id, call_uid=agent["call_uid"], ring_seconds=ring_seconds)
    about = {"agent_user_id": agent_user_id, "agent": agent["username"], "mode": chosen.value, "phone": phone}
    await audit(pool, AUDIT_ACTION, user=by, object_type="call", object_id=call_id, detail={
        **about, "spied_interface": agent["interface"], "ring_seconds": ring_seconds}, remote_addr=remote_addr)
    failure: CallControlFailed | None = None
    outcome: SpyOutcome | None = None
    try:
        outcome = await pbx.spy(request)
    except CallControlFailed as exc:
        failure = exc
    await audit(pool, RESULT_AUDIT, user=by, object_type="call", object_id=call_id, detail={
        **about, "outcome": "failed" if outcome is None else outcome.value,
        **({"error": str(failure)[:200]} if failure is not None else {})}, remote_addr=remote_addr)
    if failure is not None and failure.refused:
        raise PbxRefused(f"电话系统拒绝了{chosen.name_zh}请求：{failure}")
    if failure is not None or outcome is None:
        raise PbxUnreachable(f"电话系统无法连接，{chosen.name_zh}未开始：{failure}")
    if outcome in (SpyOutcome.NO_ANSWER, SpyOutcome.BUSY, SpyOutcome.UNAVAILABLE):
        raise _not_started(outcome, chosen, phone, ring_seconds)
    return Monitoring(agent_user_id, call_id, chosen, phone, agent["name"], outcome)


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
