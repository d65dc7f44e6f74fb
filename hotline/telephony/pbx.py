"""Queue membership of seat phones over AMI: the :class:`~hotline.calls.members.SeatPbx`
the console's seat changes use, and the reconcile the telephony service runs.

Both read Asterisk's truth with ``QueueStatus`` (``QueueMember`` events), plan with
:func:`hotline.calls.members.plan_changes` and act with ``QueueAdd`` (paused with
its ``Reason`` in one action), ``QueuePause`` and ``QueueRemove``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import asyncpg

from hotline.agi.ami import AmiConfig, AmiConnection, AmiError, AmiNoEvent, AmiRefused
from hotline.calls.members import (
    MemberChange,
    Membership,
    PbxRefused,
    PbxUnreachable,
    SeatFacts,
    desired_memberships,
    from_queue_member_event,
    hotline_queues,
    plan_changes,
)
from hotline.calls.monitor import CallControlFailed, SpyOutcome, SpyRequest, originate_outcome
from hotline.calls.settings import CallSettings
from hotline.console import seats
from hotline.registry import Registry
from hotline.runtime import Runtime

log = logging.getLogger(__name__)

#: refusals that mean the change was already made (another node, a reconcile, a person at the CLI)
_ALREADY = ("already there", "not there")


def ami_config(calls: CallSettings) -> AmiConfig | None:
    """The AMI account of ``[calls]``, or None when no PBX is configured (demos)."""
    if not calls.ami_host:
        return None
    return AmiConfig(calls.ami_host, calls.ami_port, calls.ami_username, calls.ami_secret, calls.ami_timeout)


async def read_members(ami: AmiConnection, managed: frozenset[str], member: str | None = None) -> list[Membership]:
    """Asterisk's members of the hotline queues (only ``member``'s entries if given)."""
    events = await ami.action_list("QueueStatus", {"Member": member} if member else {})
    found = [from_queue_member_event(e) for e in events if e.get("Event") == "QueueMember"]
    return [m for m in found if m.queue in managed and (member is None or m.interface == member)]


async def run_changes(ami: AmiConnection, changes: Iterable[MemberChange], *, strict: bool) -> list[MemberChange]:
    """Send each change; the ones Asterisk accepted. ``strict``: the first refusal raises
    :class:`PbxRefused`; otherwise refusals are logged and the rest still sent. A lost
    connection raises :class:`PbxUnreachable` either way."""
    done = []
    for change in changes:
        try:
            await ami.action(change.action, dict(change.fields))
        except AmiRefused as exc:
            if any(word in exc.reason.lower() for word in _ALREADY):
                continue
            if strict:
                raise PbxRefused(f"{change.describe()}：{exc.reason}", queue=change.queue,
                                 interface=change.interface) from None
            log.warning("reconcile: Asterisk refused %s: %s", change.describe(), exc.reason)
            continue
        except AmiError as exc:
            raise PbxUnreachable(str(exc)) from None
        done.append(change)
    return done


class AmiSeatPbx:
    """Seat membership changes over AMI, on ``connection`` when one is given and open,
    else on a short connection of their own (a web node without the telephony service)."""

    def __init__(self, config: AmiConfig, registry: Registry, connection: AmiConnection | None = None) -> None:
        self.config = config
        self.registry = registry
        self.connection = connection
        self.managed = hotline_queues(registry)

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AmiConnection]:
        if self.connection is not None and not self.connection.closed.is_set():
            yield self.connection
            return
        ami = AmiConnection(self.config)
        try:
            await ami.connect()
        except AmiRefused as exc:
            raise PbxRefused(f"AMI 登录被拒绝：{exc.reason}") from None
        except AmiError as exc:
            raise PbxUnreachable(str(exc)) from None
        try:
            yield ami
        finally:
            await ami.close()

    async def apply(self, seat: SeatFacts, *, also_remove: Iterable[str] = ()) -> list[MemberChange]:
        phones = frozenset(p for p in (seat.interface, *also_remove) if p)
        async with self._session() as ami:
            try:
                current = [m for phone in sorted(phones) for m in await read_members(ami, self.managed, phone)]
            except AmiRefused as exc:
                raise PbxRefused(f"QueueStatus：{exc.reason}") from None
            except AmiError as exc:
                raise PbxUnreachable(str(exc)) from None
            changes = plan_changes(current, desired_memberships(seat, self.registry),
                                   managed=self.managed, interfaces=phones)
            return await run_changes(ami, changes, strict=True)

    async def remove(self, interfaces: Iterable[str]) -> list[MemberChange]:
        phones = frozenset(interfaces)
        async with self._session() as ami:
            try:
                current = [m for phone in sorted(phones) for m in await read_members(ami, self.managed, phone)]
            except AmiError as exc:
                raise PbxUnreachable(str(exc)) from None
            return await run_changes(ami, plan_changes(current, [], managed=self.managed, interfaces=phones),
                                     strict=True)


def seat_pbx(runtime: Runtime) -> AmiSeatPbx | None:
    """The PBX a seat change on this node talks to, or None without AMI configured."""
    config = ami_config(CallSettings.from_settings(runtime.settings))
    return None if config is None else AmiSeatPbx(config, runtime.registry)


#: Q.850 16, normal clearing: the citizen's side sees an ordinary end of call
HANGUP_CAUSE = 16


class AmiCallControl:
    """:class:`~hotline.calls.monitor.CallControl` over AMI: one asynchronous
    ``Originate`` of the supervisor's phone to the ``ChanSpy`` application, whose
    ``OriginateResponse`` event says whether the phone answered (or rang out, was busy,
    could not be reached); one ``Hangup`` of the citizen's channel for a supervisor's 强拆."""

    def __init__(self, config: AmiConfig, *, grace: float = 5.0) -> None:
        self.config = config
        #: seconds beyond the ringing that the ``OriginateResponse`` may take
        self.grace = grace

    async def spy(self, request: SpyRequest) -> SpyOutcome:
        fields: dict[str, object] = {
            "Channel": request.phone, "Application": "ChanSpy", "Data": request.application_data,
            "CallerID": request.caller_id, "Timeout": request.ring_seconds * 1000, "Async": "true",
        }
        if request.variables:
            fields["Variable"] = ",".join(f"{k}={v}" for k, v in request.variables.items())
        try:
            async with AmiConnection(self.config, events=["OriginateResponse"]) as ami:
                event = await ami.action_then_event(
                    "Originate", fields, event="OriginateResponse",
                    within=request.ring_seconds + self.config.timeout + self.grace)
        except AmiNoEvent:
            # accepted, but the outcome never came: the AMI user's eventfilter in
            # manager.conf leaves OriginateResponse out (docs/ASTERISK.md)
            log.warning("%s:%s: no OriginateResponse for the monitoring of %s from %s; "
                        "add 'eventfilter = Event: OriginateResponse' to the AMI user",
                        self.config.host, self.config.port, request.target, request.phone)
            return SpyOutcome.UNKNOWN
        except AmiRefused as exc:
            raise CallControlFailed(exc.reason, refused=True) from None
        except AmiError as exc:
            raise CallControlFailed(str(exc), refused=False) from None
        return originate_outcome(event.get("Response", ""), event.get("Reason", ""))

    async def hang_up(self, channel: str) -> None:
        try:
            async with AmiConnection(self.config) as ami:
                await ami.action("Hangup", {"Channel": channel, "Cause": HANGUP_CAUSE})
        except AmiRefused as exc:
            raise CallControlFailed(exc.reason, refused=True) from None
        except AmiError as exc:
            raise CallControlFailed(str(exc), refused=False) from None


def call_control(runtime: Runtime) -> AmiCallControl | None:
    """The PBX a supervisor's monitoring request goes to, or None without AMI configured."""
    config = ami_config(CallSettings.from_settings(runtime.settings))
    return None if config is None else AmiCallControl(config)


async def reconcile(ami: AmiConnection, pool: asyncpg.Pool, registry: Registry) -> list[MemberChange]:
    """Make every hotline queue's members agree with the seats: add missing phones,
    pause/unpause with the right reason, remove dynamic members no seat wants. Holds
    the seats' PBX lock exclusively (seat changes in flight finish first). Refusals
    are logged and skipped; returns the changes made."""
    managed = hotline_queues(registry)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", seats.PBX_LOCK)
        try:
            current = await read_members(ami, managed)
        except AmiError as exc:
            raise PbxUnreachable(str(exc)) from None
        desired = [m for seat in await seats.seat_facts(conn) for m in desired_memberships(seat, registry)]
        return await run_changes(ami, plan_changes(current, desired, managed=managed), strict=False)
