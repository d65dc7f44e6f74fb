"""Which Asterisk queues a seat's phone belongs to, and how (pure: no I/O).

Seat state is ours, queue membership is Asterisk's (DESIGN.md decision 3a): the
backend says what each seat should be and changes Asterisk until it agrees, when a
person changes state and again on every reconcile.

- 置闲 ``ready``, ``on_call``, ``after_call`` → a member, not paused (the queue's
  ``wrapuptime`` and ``ringinuse = no`` keep calls away from a busy phone);
- 小休 ``break`` → a member, paused with the break reason;
- 离线 ``offline`` or no phone → in no queue.

An agent is a member of the 12345 queue and of the skill queue of each of their
skills that a dual line uses; an expert seat (role ``expert``, on a line with an
expert pool) is a member of that line's pool instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from hotline.calls.routing import skill_queue
from hotline.errors import HotlineError, ValidationError
from hotline.registry import Mode, Registry

INTERFACE_MAX = 80
#: ``TECH/resource``: an Asterisk dial string for one phone (PJSIP/8001, Local/8001@agents)
_INTERFACE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}/[A-Za-z0-9_.@+#*:/=-]+")
MEMBER_STATES = frozenset({"ready", "on_call", "after_call"})


class PbxRefused(HotlineError):
    """Asterisk answered, and refused a membership change."""

    code = "pbx_refused"
    status = 502


class PbxUnreachable(HotlineError):
    """Asterisk (its Manager Interface) could not be reached or did not answer."""

    code = "pbx_unreachable"
    status = 503


@dataclass(frozen=True, slots=True)
class SeatFacts:
    """What the plan needs to know about one person's seat."""

    user_id: int
    username: str
    display_name: str | None
    roles: frozenset[str]
    hotline_number: str | None
    state: str
    reason: str | None
    interface: str | None
    skills: tuple[str, ...] = ()

    @property
    def member_name(self) -> str:
        return self.display_name or self.username


@dataclass(frozen=True, slots=True)
class Membership:
    """One phone in one queue, as it should be or as Asterisk reports it."""

    queue: str
    interface: str
    member_name: str = ""
    paused: bool = False
    reason: str = ""
    #: Asterisk's word (``dynamic``, ``static``, ``realtime``); only dynamic members are ours to remove
    kind: str = "dynamic"

    @property
    def key(self) -> tuple[str, str]:
        return (self.queue, self.interface)


@dataclass(frozen=True, slots=True)
class MemberChange:
    """One AMI action: ``QueueAdd``, ``QueuePause`` or ``QueueRemove`` with its fields."""

    action: str
    queue: str
    interface: str
    fields: Mapping[str, str]

    def describe(self) -> str:
        paused = self.fields.get("Paused")
        extra = f" paused={paused} {self.fields.get('Reason', '')}".rstrip() if paused else ""
        return f"{self.action} {self.interface} {self.queue}{extra}"


class SeatPbx(Protocol):
    """The telephony side of a seat change (implemented over AMI in hotline.telephony)."""

    async def apply(self, seat: SeatFacts, *, also_remove: Iterable[str] = ()) -> list[MemberChange]:
        """Make Asterisk agree with ``seat`` (and take the phones ``also_remove`` out of
        every hotline queue); the changes made. Raises :class:`PbxRefused` or
        :class:`PbxUnreachable`."""
        ...

    async def remove(self, interfaces: Iterable[str]) -> list[MemberChange]:
        """Take these phones out of every hotline queue (a seat's old phone)."""
        ...


def validate_interface(value: object) -> str:
    """A phone interface (``TECH/resource``), or a ValidationError naming it."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("座席电话必须是 Asterisk 接口，如 PJSIP/8001", field="interface", value=value)
    if len(value) > INTERFACE_MAX:
        raise ValidationError(f"座席电话 {value[:INTERFACE_MAX]!r}… 超过 {INTERFACE_MAX} 个字符",
                              field="interface", value=value[:INTERFACE_MAX])
    if not _INTERFACE.fullmatch(value):
        raise ValidationError(
            f"座席电话 {value!r} 格式不对：应为「技术/资源」，如 PJSIP/8001 或 Local/8001@agents，"
            "不能含空格、逗号或换行", field="interface", value=value)
    return value


def known_skills(registry: Registry) -> frozenset[str]:
    return frozenset(line.skill for line in registry)


def validate_skills(registry: Registry, values: object) -> tuple[str, ...]:
    """Distinct, sorted skills, each a skill of a registry line; else a ValidationError naming it."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise ValidationError("技能必须是技能代码的列表", field="skills", value=values)
    skills = sorted({v.strip() for v in values if v.strip()})
    allowed = known_skills(registry)
    for skill in skills:
        if skill not in allowed:
            raise ValidationError(f"未知的技能 {skill!r}，可选：{'、'.join(sorted(allowed))}",
                                  field="skills", value=skill)
    return tuple(skills)


def hotline_queues(registry: Registry) -> frozenset[str]:
    """Every queue the backend manages members of: 12345 (and any line's queue), the
    skill queues of dual lines, the expert pools."""
    queues = {line.queue for line in registry}
    queues |= {skill_queue(line) for line in registry if line.mode is Mode.DUAL}
    queues |= {line.expert_pool for line in registry if line.expert_pool}
    return frozenset(queues)


def seat_queues(seat: SeatFacts, registry: Registry) -> tuple[str, ...]:
    """The queues this person's phone belongs to while signed on (sorted)."""
    queues: set[str] = set()
    line = registry.get(seat.hotline_number) if seat.hotline_number else None
    if "expert" in seat.roles and line is not None and line.expert_pool:
        queues.add(line.expert_pool)
    if "agent" in seat.roles:
        queues.add(registry.platform.queue)
        skills = set(seat.skills)
        queues |= {skill_queue(h) for h in registry if h.mode is Mode.DUAL and h.skill in skills}
    return tuple(sorted(queues))


def desired_memberships(seat: SeatFacts, registry: Registry) -> list[Membership]:
    """What Asterisk should have for this seat in its current state."""
    if not seat.interface or seat.state not in MEMBER_STATES | {"break"}:
        return []
    paused = seat.state == "break"
    reason = (seat.reason or "") if paused else ""
    return [Membership(q, seat.interface, seat.member_name, paused, reason) for q in seat_queues(seat, registry)]


def plan_changes(
    current: Iterable[Membership], desired: Iterable[Membership], *,
    managed: frozenset[str], interfaces: frozenset[str] | None = None,
) -> list[MemberChange]:
    """The AMI actions that turn ``current`` (Asterisk's members) into ``desired``.

    Only queues in ``managed`` are touched; with ``interfaces`` only those phones (a
    single seat's change), otherwise every dynamic member nobody wants is removed.
    Static members (``queues.conf``) are the site's, never removed. Adds come first,
    removals last, so a seat moving queues is never in none of them."""
    have = {m.key: m for m in current if m.queue in managed
            and (interfaces is None or m.interface in interfaces)}
    want = {m.key: m for m in desired if m.queue in managed}
    adds: list[MemberChange] = []
    pauses: list[MemberChange] = []
    removes: list[MemberChange] = []
    for key in sorted(want):
        w = want[key]
        h = have.get(key)
        if h is None:
            fields = {"Queue": w.queue, "Interface": w.interface, "MemberName": w.member_name,
                      "StateInterface": w.interface, "Paused": "true" if w.paused else "false"}
            if w.paused and w.reason:
                fields["Reason"] = w.reason
            adds.append(MemberChange("QueueAdd", w.queue, w.interface, fields))
        elif h.paused != w.paused or (w.paused and h.reason != w.reason):
            fields = {"Queue": w.queue, "Interface": w.interface, "Paused": "true" if w.paused else "false"}
            if w.paused and w.reason:
                fields["Reason"] = w.reason
            pauses.append(MemberChange("QueuePause", w.queue, w.interface, fields))
    for key in sorted(set(have) - set(want)):
        h = have[key]
        if h.kind == "dynamic":
            removes.append(MemberChange("QueueRemove", h.queue, h.interface,
                                        {"Queue": h.queue, "Interface": h.interface}))
    return adds + pauses + removes


def from_queue_member_event(event: Mapping[str, str]) -> Membership:
    """A ``QueueMember`` event of ``QueueStatus`` as a :class:`Membership`
    (Asterisk 22 says ``Location``/``Name``; ``Interface``/``MemberName`` accepted too)."""
    return Membership(
        queue=event.get("Queue", ""),
        interface=event.get("Location") or event.get("Interface") or "",
        member_name=event.get("Name") or event.get("MemberName") or "",
        paused=event.get("Paused", "0") in ("1", "true", "yes"),
        reason=event.get("PausedReason", "") or "",
        kind=(event.get("Membership") or "dynamic").lower(),
    )
