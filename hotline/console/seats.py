"""Seat state (座席状态) of agents and expert seats, kept in the ``seats`` table.

One table of allowed changes decides what a person may do from the console;
``on_call`` is entered when a call reaches the seat (``call.offered``), not by a
click. Every change publishes ``seat.changed`` so the wallboard follows.

With a PBX (``[calls] ami_host``), a change by hand also changes the seat phone's
queue membership in Asterisk (:mod:`hotline.calls.members`), inside the same
transaction: if Asterisk refuses or cannot be reached the state is not changed,
except going offline, which always succeeds (the reconcile catches Asterisk up).
Admins give seats their phone and skills here too (:func:`set_phone`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from hotline.auth import audit
from hotline.auth.model import User
from hotline.calls import store
from hotline.calls.members import (
    PbxRefused,
    PbxUnreachable,
    SeatFacts,
    SeatPbx,
    validate_interface,
    validate_skills,
)
from hotline.db.locks import LockKey
from hotline.errors import Conflict, NotFound, ValidationError
from hotline.events import Topic, publish
from hotline.registry import Registry

STATES = ("offline", "ready", "on_call", "after_call", "break")
#: who may be given a seat phone: agents and experts take calls, supervisors monitor them
PHONE_ROLES = frozenset({"agent", "expert", "supervisor"})
STATE_NAMES_ZH = {
    "offline": "离线",
    "ready": "空闲",
    "on_call": "通话中",
    "after_call": "话后处理",
    "break": "小休",
}
BREAK_REASONS = ("用餐", "休息", "培训", "会议", "其他")

#: state a person may choose from the console, from each state
_MANUAL: dict[str, frozenset[str]] = {
    "offline": frozenset({"ready", "break"}),
    "ready": frozenset({"break", "offline"}),
    "on_call": frozenset({"after_call"}),
    "after_call": frozenset({"ready", "break", "offline"}),
    "break": frozenset({"ready", "offline"}),
}

#: what a supervisor may put someone else's seat in (强制小休 / 强制签出), from each state:
#: never during a call (the citizen is talking), never signed on for someone who is away
_FORCED: dict[str, frozenset[str]] = {
    "ready": frozenset({"break", "offline"}),
    "after_call": frozenset({"break", "offline"}),
    "break": frozenset({"break", "offline"}),
}
FORCED_AUDIT = "seat.forced"


@dataclass(frozen=True, slots=True)
class Seat:
    user_id: int
    state: str
    reason: str | None
    since: datetime
    current_call_id: int | None
    interface: str | None
    skills: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "state": self.state,
            "state_name": STATE_NAMES_ZH[self.state],
            "reason": self.reason,
            "since": self.since,
            "current_call_id": self.current_call_id,
            "interface": self.interface,
            "skills": list(self.skills),
        }


@dataclass(frozen=True, slots=True)
class SeatChange:
    """A seat after a change, and whether Asterisk followed: ``pbx_updated`` is None
    when there is nothing to tell it (no AMI configured, no phone), False when going
    offline could not reach it (``note`` says why; the reconcile will)."""

    seat: Seat
    pbx_updated: bool | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"seat": self.seat, "pbx_updated": self.pbx_updated, "note": self.note}


#: seat changes that touch the PBX hold this advisory lock shared, a reconcile holds it
#: exclusively: a reconcile never undoes a change made between its reading Asterisk
#: and its reading the seats
PBX_LOCK = int(LockKey.PBX_MEMBERSHIP)  # queue membership vs seat changes (hotline/db/locks.py)


def _seat(row: Any) -> Seat:
    return Seat(row["user_id"], row["state"], row["reason"], row["since"],
                row["current_call_id"], row["interface"], tuple(row["skills"] or ()))


async def get_seat(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> Seat:
    """The person's seat; a first visit creates it as ``offline``."""
    return _seat(await store.ensure_seat(conn, user_id))


async def set_state(
    pool: asyncpg.Pool, user_id: int, state: str, *, reason: str | None = None
) -> Seat:
    """Change one's own seat state by hand (ready, break with a reason, after-call
    work, offline), without telling a PBX. Refuses changes the table does not allow (409)."""
    return (await change_state(pool, user_id, state, reason=reason)).seat


async def change_state(
    pool: asyncpg.Pool, user_id: int, state: str, *, reason: str | None = None,
    pbx: SeatPbx | None = None, forced_by: User | None = None, remote_addr: str | None = None,
) -> SeatChange:
    """:func:`set_state`, and with ``pbx`` the seat's queue membership follows in
    Asterisk before the change commits. Raises :class:`PbxRefused` (502) or
    :class:`PbxUnreachable` (503) with the state unchanged, except for ``offline``.

    ``forced_by``: a supervisor changes another person's seat (强制小休 / 强制签出): only
    to a break or offline, never during a call, only agents' and experts' seats;
    audited as ``seat.forced`` in the same transaction."""
    if state not in STATES:
        raise ValidationError(f"未知的座席状态 {state!r}，可选：{'、'.join(STATES)}",
                              field="state", value=state)
    if state == "break":
        if not reason or reason not in BREAK_REASONS:
            raise ValidationError(f"小休需要选择原因：{'、'.join(BREAK_REASONS)}",
                                  field="reason", value=reason)
    else:
        reason = None
    async with pool.acquire() as conn, conn.transaction():
        if pbx is not None:
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", PBX_LOCK)
        person = await _forced_target(conn, user_id) if forced_by is not None else None
        await get_seat(conn, user_id)
        row = await conn.fetchrow(f"SELECT {store.SEAT_COLUMNS} FROM seats WHERE user_id = $1 FOR UPDATE", user_id)  # noqa: S608
        current = _seat(row)
        if state == current.state and reason == current.reason:
            return SeatChange(current)
        if forced_by is not None:
            if state not in _FORCED.get(current.state, frozenset()):
                raise Conflict(
                    f"{person}当前为「{STATE_NAMES_ZH[current.state]}」，班长不能将其切换为「{STATE_NAMES_ZH[state]}」"
                    "（只能在非通话时强制小休或签出）", field="state", code="not_allowed", current=current.state)
        elif state not in _MANUAL[current.state] and not (state == "break" and current.state == "break"):
            raise Conflict(
                f"座席状态不能从「{STATE_NAMES_ZH[current.state]}」手动切换为「{STATE_NAMES_ZH[state]}」",
                field="state", current=current.state,
            )
        row = await store.set_seat_state(
            conn, user_id, state, reason,
            forced_by=(forced_by.display_name or forced_by.username) if forced_by is not None else None)
        if forced_by is not None:
            await audit(conn, FORCED_AUDIT, user=forced_by, object_type="user", object_id=user_id,
                        detail={"from": current.state, "to": state, "reason": reason,
                                "previous_reason": current.reason}, remote_addr=remote_addr)
        pbx_updated, note = await _tell_pbx(conn, pbx, user_id, state)
    return SeatChange(_seat(row), pbx_updated, note)


async def _forced_target(conn: asyncpg.Connection, user_id: int) -> str:
    """The name of the agent or expert a supervisor changes; 404 for anyone else."""
    person = await conn.fetchrow("SELECT username, display_name FROM users "
                                 "WHERE id = $1 AND roles && ARRAY['agent', 'expert']", user_id)
    if person is None:
        raise no_such_seat(user_id)
    return str(person["display_name"] or person["username"])


def no_such_seat(user_id: int) -> NotFound:
    """The refusal of a supervisor's action on someone who is not an agent or expert."""
    return NotFound(f"没有编号为 {user_id} 的话务员或专家座席", field="user_id", value=user_id)


async def _tell_pbx(
    conn: asyncpg.Connection, pbx: SeatPbx | None, user_id: int, state: str
) -> tuple[bool | None, str | None]:
    facts = await seat_facts(conn, user_id) if pbx is not None else []
    if pbx is None or not facts:
        return None, None
    try:
        await pbx.apply(facts[0])
    except PbxRefused as exc:
        if state == "offline":
            return False, f"电话系统拒绝了变更（{exc.message}），座席已离线，稍后自动核对"
        raise PbxRefused(f"电话系统拒绝了座席状态变更：{exc.message}", **exc.details) from None
    except PbxUnreachable as exc:
        if state == "offline":
            return False, f"电话系统暂时无法连接（{exc.message}），座席已离线，恢复后自动核对"
        raise PbxUnreachable(f"电话系统暂时无法连接，座席状态未变更：{exc.message}", **exc.details) from None
    return True, None


async def mark_on_call(pool: asyncpg.Pool, user_id: int, call_id: int) -> bool:
    """Put the seat on the call that reached it. Idempotent (every web node hears the
    same ``call.offered``); returns True when this call changed the row."""
    async with pool.acquire() as conn, conn.transaction():
        return await store.seat_on_call(conn, user_id, call_id)


async def list_seats(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    """Every agent and expert seat with its person, for the supervisor."""
    rows = await conn.fetch(
        """SELECT u.id AS user_id, u.username, u.display_name, u.roles, u.hotline_number,
                  coalesce(s.state, 'offline') AS state, s.reason, s.since, s.current_call_id,
                  s.interface IS NOT NULL AS has_phone
             FROM users u LEFT JOIN seats s ON s.user_id = u.id
            WHERE u.active AND u.roles && ARRAY['agent', 'expert']
            ORDER BY u.username"""
    )
    return [dict(r) | {"state_name": STATE_NAMES_ZH[r["state"]]} for r in rows]


_FACTS = """SELECT u.id AS user_id, u.username, u.display_name, u.roles, u.hotline_number, u.active,
                   s.state, s.reason, s.interface, s.skills
              FROM seats s JOIN users u ON u.id = s.user_id"""


def _facts(row: Any) -> SeatFacts:
    return SeatFacts(
        user_id=row["user_id"], username=row["username"], display_name=row["display_name"],
        roles=frozenset(row["roles"] or ()), hotline_number=row["hotline_number"],
        state=row["state"] if row["active"] else "offline", reason=row["reason"],
        interface=row["interface"], skills=tuple(row["skills"] or ()),
    )


async def seat_facts(conn: asyncpg.Connection | asyncpg.Pool, user_id: int | None = None) -> list[SeatFacts]:
    """Every seat with a phone (or just ``user_id``'s), as the membership plan needs it.
    A deactivated person counts as offline."""
    if user_id is None:
        rows = await conn.fetch(f"{_FACTS} WHERE s.interface IS NOT NULL ORDER BY s.user_id")  # noqa: S608
    else:
        rows = await conn.fetch(f"{_FACTS} WHERE s.user_id = $1 AND s.interface IS NOT NULL", user_id)  # noqa: S608
    return [_facts(r) for r in rows]


@dataclass(frozen=True, slots=True)
class PhoneChange:
    """A seat's phone and skills after an admin's change; ``pbx_updated`` as in
    :class:`SeatChange` (a PBX that did not follow is caught up by the reconcile)."""

    user_id: int
    interface: str | None
    skills: tuple[str, ...]
    pbx_updated: bool | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "interface": self.interface, "skills": list(self.skills),
                "pbx_updated": self.pbx_updated, "note": self.note}


async def set_phone(
    pool: asyncpg.Pool, registry: Registry, user_id: int, *, interface: object,
    skills: object, by: User | None = None, by_name: str | None = None,
    remote_addr: str | None = None, pbx: SeatPbx | None = None,
) -> PhoneChange:
    """Give an agent, expert or supervisor seat its phone (``TECH/resource``, unique across seats;
    None takes it away) and skills (of registry lines). Audited as ``seat_phone_updated``.
    With ``pbx``, a signed-on seat's membership follows (the old phone leaves the queues)."""
    phone = None if interface is None or interface == "" else validate_interface(interface)
    chosen = validate_skills(registry, skills)
    async with pool.acquire() as conn, conn.transaction():
        if pbx is not None:
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", PBX_LOCK)
        user = await conn.fetchrow("SELECT id, username, roles, active FROM users WHERE id = $1", user_id)
        if user is None:
            raise NotFound(f"没有编号为 {user_id} 的用户", field="user_id", value=user_id)
        if not set(user["roles"]) & PHONE_ROLES:
            raise ValidationError(f"用户 {user['username']} 不是话务员、专家座席或班长，不能分配座席电话",
                                  field="user_id", value=user_id)
        if phone is not None:
            holder = await conn.fetchval(
                """SELECT u.username FROM seats s JOIN users u ON u.id = s.user_id
                    WHERE s.interface = $1 AND s.user_id <> $2""", phone, user_id)
            if holder is not None:
                raise Conflict(f"座席电话 {phone} 已分配给 {holder}", field="interface", value=phone)
        await get_seat(conn, user_id)
        old = await conn.fetchrow("SELECT interface, skills FROM seats WHERE user_id = $1 FOR UPDATE", user_id)
        try:
            await store.set_seat_phone(conn, user_id, phone, list(chosen))
        except asyncpg.UniqueViolationError:
            raise Conflict(f"座席电话 {phone} 已分配给其他座席", field="interface", value=phone) from None
        await audit(conn, "seat_phone_updated", user=by, username=by_name, object_type="user", object_id=user_id,
                    detail={"interface": phone, "skills": list(chosen), "previous_interface": old["interface"],
                            "previous_skills": list(old["skills"] or ())}, remote_addr=remote_addr)
        pbx_updated: bool | None = None
        note: str | None = None
        if pbx is not None:
            facts = await seat_facts(conn, user_id)
            seat = facts[0] if facts else None
            gone = [old["interface"]] if old["interface"] and old["interface"] != phone else []
            try:
                if seat is not None:
                    await pbx.apply(seat, also_remove=gone)
                    pbx_updated = True
                elif gone:
                    await pbx.remove(gone)
                    pbx_updated = True
            except (PbxRefused, PbxUnreachable) as exc:
                pbx_updated, note = False, f"已保存；电话系统未更新（{exc.message}），稍后自动核对"
        await publish(conn, Topic.SEAT_CHANGED, {"user_id": user_id, "state": (await get_seat(conn, user_id)).state})
    return PhoneChange(user_id, phone, chosen, pbx_updated, note)


async def list_phones(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    """Every agent, expert and supervisor with their phone, skills and state, for the
    admin (a supervisor's phone is the one that rings to monitor a call; it joins no queue)."""
    rows = await conn.fetch(
        """SELECT u.id AS user_id, u.username, u.display_name, u.roles, u.hotline_number, u.active,
                  s.interface, coalesce(s.skills, '{}') AS skills, coalesce(s.state, 'offline') AS state,
                  s.reason, s.phone_updated_at
             FROM users u LEFT JOIN seats s ON s.user_id = u.id
            WHERE u.roles && ARRAY['agent', 'expert', 'supervisor']
            ORDER BY u.username"""
    )
    return [dict(r) | {"roles": list(r["roles"]), "skills": list(r["skills"]),
                       "state_name": STATE_NAMES_ZH[r["state"]]} for r in rows]


async def user_id_by_name(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> int:
    user_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", username)
    if user_id is None:
        raise NotFound(f"没有用户 {username}", field="username", value=username)
    return int(user_id)
