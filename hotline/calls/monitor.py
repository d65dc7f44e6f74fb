"""Supervisor monitoring of a live call (班长监听、耳语、强插) with Asterisk's ChanSpy,
and the supervisor's hang-up of a call (强拆: an abusive or stuck call).

The supervisor asks to monitor an agent's (or expert's) call; the PBX rings the
supervisor's own seat phone and, once it is answered, runs ``ChanSpy`` on the agent's
phone channel:

* **listen** (监听): the supervisor hears both sides; nobody hears the supervisor;
* **whisper** (耳语): the agent hears the supervisor, the citizen does not;
* **barge** (强插): both hear the supervisor (a three-way call).

The spied channel is found by the agent's phone interface (``PJSIP/8001`` spies on
``PJSIP/8001-…``; ``Local/8001@agents`` on ``Local/8001@agents-…;1``), bridged
channels only (``b``), so no channel name has to be stored per call. The spying leg
ends with the call (``E``). Its CDR carries ``hotline-leg:<call_uid>`` in the
userfield, so the record import files it (and a Local phone's second half, which shares
its linkedid) under the spied call, as a leg: it never becomes a call record. Who
listened to which call, when and how is the audit log's (``call.monitored``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from hotline.calls.dialplan import CDR_LEG_TAG
from hotline.errors import ValidationError


class MonitorMode(Enum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"

    @property
    def name_zh(self) -> str:
        return _NAMES_ZH[self]

    @property
    def chanspy_options(self) -> str:
        """``b`` bridged channels only, ``q`` no beep nor channel name, ``E`` stop when the
        spied channel hangs up, ``S`` stop when nothing is left to spy on; ``w`` whisper
        to the spied channel, ``B`` barge: talk to both parties."""
        return "bqES" + {MonitorMode.LISTEN: "", MonitorMode.WHISPER: "w", MonitorMode.BARGE: "B"}[self]


_NAMES_ZH = {MonitorMode.LISTEN: "监听", MonitorMode.WHISPER: "耳语", MonitorMode.BARGE: "强插"}

#: what a display name may not carry into a ``"name" <number>`` caller ID
_CALLER_ID_UNSAFE = re.compile(r'["\\<>\x00-\x1f\x7f]')
#: how long the supervisor's phone rings before the PBX gives up (``[calls] monitor_ring_seconds``)
RING_SECONDS = 30


class SpyOutcome(Enum):
    """What became of the ringing of the supervisor's phone."""

    ANSWERED = "answered"  # picked up: ChanSpy runs
    NO_ANSWER = "no_answer"  # rang out, or declined
    BUSY = "busy"
    UNAVAILABLE = "unavailable"  # no such phone, not registered, congestion
    UNKNOWN = "unknown"  # the PBX accepted the request but never said (events filtered out)

    @property
    def started(self) -> bool:
        return self is SpyOutcome.ANSWERED


#: Asterisk's ``OriginateResponse`` ``Reason`` (an ``AST_CONTROL_*`` value) on failure
_ORIGINATE_REASONS = {1: SpyOutcome.NO_ANSWER, 3: SpyOutcome.NO_ANSWER, 5: SpyOutcome.BUSY}


def originate_outcome(response: str, reason: str) -> SpyOutcome:
    """The outcome an ``OriginateResponse`` event reports: ``Response: Success`` once
    the phone answered; else ``Reason`` 1 (hung up while ringing: declined), 3 (rang
    out), 5 (busy), 8 (congestion) or 0 (no such phone, not reachable)."""
    if response == "Success":
        return SpyOutcome.ANSWERED
    code = int(reason) if reason.strip().isdigit() else 0
    return _ORIGINATE_REASONS.get(code, SpyOutcome.UNAVAILABLE)


def parse_mode(value: object) -> MonitorMode:
    """The mode named by a request; refused naming the field and the value otherwise."""
    for mode in MonitorMode:
        if value == mode.value:
            return mode
    raise ValidationError(
        f"监听方式无效：{value!r}（可选：listen 监听、whisper 耳语、barge 强插）",
        field="mode", code="invalid_choice", value=value if isinstance(value, (str, int, float)) else str(value))


@dataclass(frozen=True, slots=True)
class SpyRequest:
    """What the PBX is asked to do: ring ``phone`` and spy on ``target``."""

    phone: str  # the supervisor's phone interface (the channel to originate)
    target: str  # the agent's phone interface
    mode: MonitorMode
    caller_id: str  # what the supervisor's phone shows
    variables: Mapping[str, str] = field(default_factory=dict)
    ring_seconds: int = RING_SECONDS

    @property
    def application_data(self) -> str:
        """``ChanSpy(<prefix>,<options>)``: the prefix ends with ``-`` so ``PJSIP/800``
        never spies on ``PJSIP/8001``'s channels."""
        return f"{self.target}-,{self.mode.chanspy_options}"


def spy_request(*, phone: str, target: str, mode: MonitorMode, agent_name: str, call_id: int,
                call_uid: str, ring_seconds: int = RING_SECONDS) -> SpyRequest:
    # the interfaces were validated when an admin gave the phones (hotline.calls.members):
    # no comma, quote or space can reach the application data
    label = _CALLER_ID_UNSAFE.sub("", agent_name)[:40]
    return SpyRequest(
        phone=phone, target=target, mode=mode,
        caller_id=f'"{mode.name_zh} {label}" <{call_id}>',
        variables={"CDR(userfield)": f"{CDR_LEG_TAG}{call_uid}", "HOTLINE_MONITOR": f"{call_id}:{mode.value}"},
        ring_seconds=ring_seconds,
    )


class CallControlFailed(Exception):
    """The PBX refused a supervisor's request (``refused``) or could not be reached."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


class CallControl(Protocol):
    """The PBX side of the supervisor's call controls (AMI: hotline.telephony.pbx)."""

    async def spy(self, request: SpyRequest) -> SpyOutcome:
        """Ring ``request.phone`` (at most ``request.ring_seconds``); once answered, spy on
        ``request.target``. Returns what became of the ringing; raises
        :class:`CallControlFailed` when the PBX refuses the request or cannot be reached."""

    async def hang_up(self, channel: str) -> None:
        """Hang up ``channel`` (the citizen's: the whole call ends); raises
        :class:`CallControlFailed` when the PBX refuses or cannot be reached."""


#: a supervisor's hang-up must say why (the audit and the call's record keep it)
HANGUP_REASON_MAX = 200


def hangup_reason(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("强拆需要填写原因（如：骚扰电话、恶意占线）", field="reason", code="required")
    reason = value.strip()
    if len(reason) > HANGUP_REASON_MAX:
        raise ValidationError(f"原因最多 {HANGUP_REASON_MAX} 字，收到 {len(reason)} 字", field="reason",
                              code="too_long", value=len(reason))
    return reason
