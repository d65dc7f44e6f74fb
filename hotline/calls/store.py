"""The call record in PostgreSQL, and what a flow does when PostgreSQL is away.

Every change a flow makes to a call record is a small **operation** (``start``,
``update``, ``answer``, ``end``, ``queue_join``; ``record`` for a call only Asterisk's
records know) with its data, applied by :func:`apply_op`. A
flow applies it directly when the database answers; otherwise (or while older
operations still wait in the journal, so that order is kept) it appends it to
the durable journal (:mod:`hotline.calls.journal`), and the replay applies the
very same function later. One code path, so a replayed record is the record the
flow would have written.

This module is the one writer of ``calls``: the AGI flows, the journal replay, the AMI
service and the import of Asterisk's records (CDR, queue_log: :mod:`hotline.ingest.cdr`)
all go through :func:`apply_op`, so one set of rules decides which source wins:

* the AGI's decisions (line, route, what it dialled, its decisions) win over a record;
* a record only fills what is empty; a state never goes back; an ended call stays ended
  (a later end only adds what the first one did not know);
* the first answer time is kept; an after-the-fact source (``data["source"]`` set:
  ``cdr``, ``queue_log``) never replaces who answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from hotline.errors import Unavailable
from hotline.events import CHANNEL as EVENTS_CHANNEL
from hotline.events import publish, publish_many

log = logging.getLogger("hotline.calls")

#: columns a ``start`` or ``update`` operation may write (names are never taken from input)
START_COLUMNS = (
    "call_uid", "linkedid", "channel", "source", "hotline_number", "dialled", "caller_number",
    "caller_raw", "caller_kind", "caller_name", "route", "queue", "skill", "dial_target",
    "decisions", "state", "started_at", "queued_at", "repeat_ticket_id", "ticket_id",
)
UPDATE_COLUMNS = (
    "route", "queue", "skill", "dial_target", "state", "disposition", "queued_at", "ticket_id",
    "repeat_ticket_id", "answered_by", "agent_id", "channel", "linkedid",
)
_TIMESTAMPS = {"started_at", "queued_at", "answered_at", "ended_at"}
OPEN_STATES = ("ringing", "queued", "answered", "transferred")


class DatabaseDown(Unavailable):
    """PostgreSQL did not answer within the flow's budget."""

    code = "database_unavailable"


def now() -> datetime:
    return datetime.now(UTC)


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _value(column: str, value: Any) -> Any:
    return _ts(value) if column in _TIMESTAMPS else value


def is_connection_failure(exc: BaseException) -> bool:
    """Errors that mean "the database is not there", as opposed to a bug or bad data."""
    if isinstance(exc, (OSError, TimeoutError, asyncpg.InterfaceError,
                        asyncpg.PostgresConnectionError, ConnectionError)):
        return True
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return True  # a connection left mid-protocol by a terminated backend
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        # 08 connection exception, 57 operator intervention (shutdown, cannot connect now),
        # 53 insufficient resources, 55000 "database is not accepting connections"
        return state[:2] in ("08", "57", "53") or state == "55000"
    return False


class CallStore:
    """The pool as the call flows see it: bounded waits and a short memory of failure,
    so that during an outage each call costs microseconds, not a timeout."""

    def __init__(self, pool: asyncpg.Pool | None, *, timeout: float = 2.0, retry_after: float = 2.0) -> None:
        self.pool = pool
        self.timeout = timeout
        self.retry_after = retry_after
        self._down_until = 0.0
        self.failures = 0
        self.busy = 0

    @property
    def believed_up(self) -> bool:
        return self.pool is not None and time.monotonic() >= self._down_until

    def mark_down(self, exc: BaseException | None = None) -> None:
        self.failures += 1
        was_up = self.believed_up
        self._down_until = time.monotonic() + self.retry_after
        if was_up:
            reason = f"{type(exc).__name__}: {exc}" if exc is not None else "marked down"
            log.warning("database unavailable for call flows (%s); journaling for %.0f s", reason, self.retry_after)

    def mark_up(self) -> None:
        self._down_until = 0.0

    @contextlib.asynccontextmanager
    async def connection(self, *, force: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for one unit of work: at most ``timeout`` to get one and
        ``timeout`` for the work. Raises :class:`DatabaseDown` instead of connection
        errors or timeouts. A pool that is merely busy (every connection in use) costs
        this call its budget but does not mark the database down."""
        pool = self.pool
        if pool is None or (not force and not self.believed_up):
            raise DatabaseDown("database marked unavailable")
        try:
            conn = await asyncio.wait_for(pool.acquire(), self.timeout)
        except TimeoutError:
            if pool.get_size() > 0:
                # connections exist (a dead server makes them fail, not wait): the database
                # answers, we are busy or the event loop is saturated
                self.busy += 1
                raise DatabaseDown("every pooled connection busy") from None
            self.mark_down(TimeoutError("no connection within the budget"))
            raise DatabaseDown("no connection within the budget") from None
        except Exception as exc:
            if is_connection_failure(exc):
                self.mark_down(exc)
                raise DatabaseDown(str(exc) or type(exc).__name__) from exc
            raise
        try:
            async with asyncio.timeout(self.timeout):
                yield conn
        except DatabaseDown:
            raise
        except Exception as exc:
            if is_connection_failure(exc):
                self.mark_down(exc)
                raise DatabaseDown(str(exc) or type(exc).__name__) from exc
            raise
        finally:
            await pool.release(conn)


def make_entry(op: str, call_uid: str, data: dict[str, Any]) -> dict[str, Any]:
    """A journal-ready operation (``id`` makes a replay idempotent)."""
    return {"id": uuid.uuid4().hex, "op": op, "uid": call_uid, "at": now().isoformat(), "data": data}


async def apply_op(conn: asyncpg.Connection, entry: dict[str, Any], *, live: bool = True) -> int | None:
    """Apply one operation inside the caller's transaction; returns the call id (None
    when the call is unknown). ``live`` is False during a journal replay: no screen-pop
    event for a call that ended long ago."""
    op, uid, data = entry["op"], entry["uid"], entry["data"]
    if op == "start":
        return await _start(conn, uid, data)
    if op == "update":
        return await _update(conn, uid, data)
    if op == "answer":
        return await _answer(conn, uid, data, live=live)
    if op == "end":
        return await _end(conn, uid, data)
    if op == "queue_join":
        return await _queue_join(conn, uid, data)
    if op == "record":
        return await _record(conn, uid, data)
    raise ValueError(f"unknown call operation {op!r}")


#: how a ``start`` merges into a record another source (CDR, queue_log) made first: the
#: AGI's decisions win (line, route, what it dialled), what the record knew is kept
#: where the AGI knows nothing, and a later state is never set back
_START_MERGE = {
    "hotline_number": "EXCLUDED.hotline_number",
    "dialled": "coalesce(EXCLUDED.dialled, calls.dialled)",
    "caller_number": "CASE WHEN EXCLUDED.caller_number <> '' THEN EXCLUDED.caller_number ELSE calls.caller_number END",
    "caller_raw": "coalesce(EXCLUDED.caller_raw, calls.caller_raw)",
    "caller_kind": "CASE WHEN EXCLUDED.caller_number <> '' THEN EXCLUDED.caller_kind ELSE calls.caller_kind END",
    "caller_name": "coalesce(EXCLUDED.caller_name, calls.caller_name)",
    "route": "coalesce(EXCLUDED.route, calls.route)",
    "queue": "coalesce(calls.queue, EXCLUDED.queue)",
    "skill": "coalesce(EXCLUDED.skill, calls.skill)",
    "dial_target": "coalesce(EXCLUDED.dial_target, calls.dial_target)",
    "decisions": "EXCLUDED.decisions || calls.decisions",
    "state": "CASE WHEN calls.state = 'ringing' THEN EXCLUDED.state ELSE calls.state END",
    "started_at": "EXCLUDED.started_at",
    "queued_at": "coalesce(calls.queued_at, EXCLUDED.queued_at)",
    "repeat_ticket_id": "coalesce(calls.repeat_ticket_id, EXCLUDED.repeat_ticket_id)",
    "ticket_id": "coalesce(calls.ticket_id, EXCLUDED.ticket_id)",
    "channel": "coalesce(EXCLUDED.channel, calls.channel)",
    "linkedid": "coalesce(calls.linkedid, EXCLUDED.linkedid)",
}


async def _start(conn: asyncpg.Connection, uid: str, data: dict[str, Any]) -> int:
    fields = {k: _value(k, v) for k, v in data.items() if k in START_COLUMNS}
    fields["call_uid"] = uid
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(2, len(columns) + 2))
    merge = ", ".join(f"{c} = {_START_MERGE[c]}" for c in columns if c in _START_MERGE)
    # one round trip on the hot path: the insert and its call.updated event (same
    # message shape as hotline.events.publish), atomic as one statement. A record made
    # first by another source (the CDR import during a database outage) takes the
    # AGI's facts; a second AGI start of the same call (hagi fail-over, a replay) is a no-op.
    call_id = await conn.fetchval(
        f"""WITH ins AS (
                INSERT INTO calls ({', '.join(columns)}) VALUES ({placeholders})
                ON CONFLICT (call_uid) DO UPDATE SET {merge}, source = 'agi', updated_at = now()
                 WHERE calls.source <> 'agi'
                RETURNING id, state)
            SELECT id FROM ins
             WHERE pg_notify($1, json_build_object('topic', 'call.updated', 'payload',
                             json_build_object('call_id', id, 'state', state))::text) IS NOT NULL""",  # noqa: S608
        EVENTS_CHANNEL, *fields.values(),
    )
    if call_id is None:  # Asterisk retried the request (hagi fail-over) or a replay
        call_id = await conn.fetchval("SELECT id FROM calls WHERE call_uid = $1", uid)
    return int(call_id)


#: columns a ``record`` operation (a call created from Asterisk's records) may write
RECORD_COLUMNS = (
    "linkedid", "channel", "source", "hotline_number", "dialled", "caller_number", "caller_raw", "caller_kind",
    "route", "decisions", "started_at",
)


async def _record(conn: asyncpg.Connection, uid: str, data: dict[str, Any]) -> int:
    """A call the backend has no record of, made from Asterisk's records (the CDR row
    tagged with the line): created once; a call that exists already (the AGI's, or an
    earlier import) is left as it is: the later operations fill it."""
    fields = {k: _value(k, v) for k, v in data.items() if k in RECORD_COLUMNS}
    fields["call_uid"] = uid
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    call_id = await conn.fetchval(
        f"""INSERT INTO calls ({', '.join(columns)}) VALUES ({placeholders})
            ON CONFLICT (call_uid) DO NOTHING RETURNING id""",  # noqa: S608 (constant column names)
        *fields.values(),
    )
    if call_id is None:
        return int(await conn.fetchval("SELECT id FROM calls WHERE call_uid = $1", uid))
    await publish(conn, "call.updated", {"call_id": call_id, "state": "ringing"})
    return int(call_id)


async def _queue_join(conn: asyncpg.Connection, uid: str, data: dict[str, Any]) -> int | None:
    """The call entered an Asterisk queue (AMI ``QueueCallerJoin``, queue_log ``ENTERQUEUE``,
    a simulated queue): *offered* from this moment; the first queue's time is kept, the
    queue name follows the call (a dual line's overflow into the 12345 queue). One
    statement; ``call.updated`` only when something changed (the same join told again
    by queue_log after AMI costs one round trip and wakes nobody)."""
    row = await conn.fetchrow(
        """WITH up AS (
               UPDATE calls SET queued_at = coalesce(queued_at, $2), queue = coalesce($3, queue),
                      state = CASE WHEN state IN ('ringing', 'queued', 'transferred') THEN 'queued' ELSE state END,
                      updated_at = now()
                WHERE call_uid = $1
                  AND (queued_at IS NULL OR queue IS DISTINCT FROM coalesce($3, queue)
                       OR state IN ('ringing', 'transferred'))
                RETURNING id, state)
           SELECT coalesce((SELECT id FROM up), (SELECT id FROM calls WHERE call_uid = $1)) AS id,
                  (SELECT pg_notify($4, json_build_object('topic', 'call.updated', 'payload',
                          json_build_object('call_id', id, 'state', state))::text) FROM up) AS notified""",
        uid, _ts(data["at"]), data.get("queue"), EVENTS_CHANNEL,
    )
    return None if row is None or row["id"] is None else int(row["id"])


#: operations that are one statement: applied without a transaction around them
SINGLE_STATEMENT_OPS = frozenset({"start", "queue_join"})


async def _update(conn: asyncpg.Connection, uid: str, data: dict[str, Any]) -> int | None:
    sets = {k: _value(k, v) for k, v in (data.get("set") or {}).items() if k in UPDATE_COLUMNS}
    append = list(data.get("append") or [])
    # a late report (e.g. a Dial() result after the hangup) never reopens a finished call
    assignments = [
        f"{col} = CASE WHEN state IN ('completed', 'abandoned', 'failed') THEN {col} ELSE ${i} END"
        if col in ("state", "queue", "queued_at") else f"{col} = ${i}"
        for i, col in enumerate(sets, start=3)
    ]
    assignments.append("decisions = decisions || $2::jsonb")
    assignments.append("updated_at = now()")
    row = await conn.fetchrow(
        f"UPDATE calls SET {', '.join(assignments)} WHERE call_uid = $1 "  # noqa: S608
        "RETURNING id, state",
        uid, append, *sets.values(),
    )
    if row is None:
        log.warning("call %s: update for an unknown call dropped: %s", uid, data)
        return None
    if "state" in sets:
        await publish(conn, "call.updated", {"call_id": row["id"], "state": row["state"]})
    return int(row["id"])


async def _answer(conn: asyncpg.Connection, uid: str, data: dict[str, Any], *, live: bool) -> int | None:
    """An agent's seat picked the call up from the queue (``agent_connect``)."""
    row = await conn.fetchrow(
        """SELECT id, state, hotline_number, started_at, answered_at, agent_id
             FROM calls WHERE call_uid = $1 FOR UPDATE""",
        uid,
    )
    if row is None:
        log.warning("call %s: answer for an unknown call dropped", uid)
        return None
    at = _ts(data["at"])
    assert at is not None
    first = row["answered_at"] is None
    answered_at = at if first else row["answered_at"]
    wait = Decimal(str(round(max((answered_at - row["started_at"]).total_seconds(), 0.0), 3)))
    agent_id = data.get("agent_id")
    answered_by = data.get("answered_by")
    if agent_id is None and answered_by:
        seat = await seat_of_member(conn, answered_by)
        if seat is not None:
            agent_id, answered_by = seat
    if not first and agent_id in (None, row["agent_id"]):
        # the same answer told again by another source (the member's gosub, AMI's
        # AgentConnect, queue_log's CONNECT): nothing new, and no second screen-pop
        return int(row["id"])
    source = data.get("source")  # None: a live flow (AGI, AMI); else an after-the-fact record
    decision: dict[str, Any] = {"step": "answer", "by": answered_by, "agent_id": agent_id, "at": data["at"]}
    if source:
        decision["source"] = source
    await conn.execute(
        """UPDATE calls SET state = CASE WHEN state IN ('completed', 'abandoned', 'failed')
                                         THEN state ELSE 'answered' END,
                  answered_at = $2, wait_seconds = $3, agent_id = COALESCE($4, agent_id),
                  -- answered from a queue: in it at the latest when answered (AMI's join and
                  -- the member's gosub race; neither may make the wait negative)
                  queued_at = least(coalesce(queued_at, started_at), $2),
                  answered_by = CASE WHEN $7 AND answered_by IS NOT NULL THEN answered_by
                                     ELSE coalesce($5, answered_by) END,
                  decisions = decisions || $6::jsonb, updated_at = now()
            WHERE id = $1""",
        row["id"], answered_at, wait, agent_id, answered_by, [decision], bool(source),
    )
    events: list[tuple[str, dict[str, Any]]] = []
    if agent_id is not None and live:
        if await seat_on_call(conn, agent_id, row["id"], notify=False):
            events.append(("seat.changed", {"user_id": agent_id, "state": "on_call"}))
        events.append(("call.offered", {
            "call_id": row["id"], "user_id": agent_id, "hotline_number": row["hotline_number"],
        }))
    events.append(("call.updated", {"call_id": row["id"], "state": "answered"}))
    await publish_many(conn, events)  # one round trip for all of them
    return int(row["id"])


async def seat_of_member(conn: asyncpg.Connection, member: str) -> tuple[int, str] | None:
    """``(user_id, interface)`` of a queue member as Asterisk names it: the interface, or
    the member name the seat was added with (``hotline.calls.members``: the display name,
    else the username; queue_log's agent field). An ambiguous name names nobody."""
    rows = await conn.fetch(
        """SELECT s.user_id, s.interface, s.interface = $1 AS exact FROM seats s JOIN users u ON u.id = s.user_id
            WHERE s.interface = $1 OR u.username = $1 OR u.display_name = $1
            ORDER BY (s.interface = $1) DESC, (u.username = $1) DESC LIMIT 2""", member)
    if not rows or (len(rows) > 1 and not rows[0]["exact"]):
        return None
    return int(rows[0]["user_id"]), rows[0]["interface"] or member


def _seconds(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


async def _end(conn: asyncpg.Connection, uid: str, data: dict[str, Any]) -> int | None:
    """Finalise: answered or abandoned, wait and talk durations, disposition, who answered.
    The first end wins; a later end from another source (the AGI's hangup replayed after
    the CDR ended the call, or the reverse) only fills what is empty and adds its decision."""
    row = await conn.fetchrow(
        """SELECT id, state, route, dial_target, started_at, answered_at, ended_at, agent_id,
                  answered_by, disposition
             FROM calls WHERE call_uid = $1 FOR UPDATE""",
        uid,
    )
    if row is None:
        log.warning("call %s: end for an unknown call dropped", uid)
        return None
    source = data.get("source") or "agi"
    agent_id = data.get("agent_id")
    if row["ended_at"] is not None:
        # hangup reported twice (handler + retry, AMI, queue_log, CDR): the first one wins;
        # a later one is noted only when it brings a fact the record lacks (a disposition,
        # the agent). Which sources reported the call stays visible anyway: their rows are
        # linked to it (cdr_records.call_id, queue_log_events.call_id).
        fills = (row["disposition"] is None and data.get("disposition")) or (row["agent_id"] is None and agent_id)
        if fills and not await conn.fetchval(
                """SELECT decisions @> jsonb_build_array(jsonb_build_object('step', 'hangup', 'source', $2::text))
                     FROM calls WHERE id = $1""", row["id"], source):
            decision = {"step": "hangup", "source": source, "at": data["at"], "after_end": True}
            for key in ("cause", "dialstatus", "queuestatus"):
                if data.get(key):
                    decision[key] = data[key]
            await conn.execute(
                """UPDATE calls SET disposition = coalesce(disposition, $2), agent_id = coalesce(agent_id, $3),
                          decisions = decisions || $4::jsonb, updated_at = now()
                    WHERE id = $1""",
                row["id"], data.get("disposition"), agent_id, [decision],
            )
        return int(row["id"])
    ended_at = _ts(data["at"])
    assert ended_at is not None
    answered_at = row["answered_at"]
    answered_by = row["answered_by"]
    dialstatus = (data.get("dialstatus") or "").upper()
    answered_time = _seconds(data.get("answeredtime"))
    if answered_at is None and dialstatus == "ANSWER":
        # a sub-centre (or expert) took the call through Dial(): Asterisk tells us for how long
        talked = answered_time or 0.0
        answered_at = max(row["started_at"], ended_at - _delta(talked))
        answered_by = answered_by or data.get("dial_target") or row["dial_target"]
    disposition = row["disposition"]
    if row["state"] in ("completed", "abandoned", "failed"):
        state = row["state"]
    elif answered_at is not None:
        state = "completed"
    elif row["route"] == "blocked":
        state, disposition = "completed", disposition or "blocked"
    else:
        state = "abandoned"
    if disposition is None:
        disposition = data.get("disposition") or ("answered" if answered_at else "abandoned")
    wait_end = answered_at or ended_at
    wait = round(max((wait_end - row["started_at"]).total_seconds(), 0.0), 3)
    talk: float | None = round(max((ended_at - answered_at).total_seconds(), 0.0), 3) if answered_at else None
    decision = {"step": "hangup", "at": data["at"], "state": state, "disposition": disposition}
    if source != "agi":
        decision["source"] = source
    for key in ("cause", "dialstatus", "queuestatus"):
        if data.get(key):
            decision[key] = data[key]
    await conn.execute(
        """UPDATE calls SET state = $2, disposition = $3, ended_at = $4, answered_at = $5,
                  answered_by = $6, wait_seconds = $7, talk_seconds = $8,
                  decisions = decisions || $9::jsonb, agent_id = coalesce(agent_id, $10), updated_at = now()
            WHERE id = $1""",
        row["id"], state, disposition, ended_at, answered_at, answered_by,
        Decimal(str(wait)), None if talk is None else Decimal(str(talk)), [decision], agent_id,
    )
    # whoever was on this call (agent or expert seat) moves on to after-call work
    left = await seats_leave_call(conn, row["id"], notify=False)
    await publish_many(conn, [("call.updated", {"call_id": row["id"], "state": state}),
                              *(("seat.changed", {"user_id": u, "state": "after_call"}) for u in left)])
    return int(row["id"])


def _delta(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


# ---- small facts other modules record on a call ---------------------------------------

async def link_ticket(conn: asyncpg.Connection, call_id: int, ticket_id: int) -> bool:
    """The ticket opened on (or linked to) this call; the first ticket stays the call's."""
    done = await conn.fetchval(
        "UPDATE calls SET ticket_id = $2, updated_at = now() WHERE id = $1 AND ticket_id IS NULL RETURNING 1",
        call_id, ticket_id)
    return bool(done)


async def note_on_call(
    conn: asyncpg.Connection, call_id: int, decisions: list[dict[str, Any]], *, state: str | None = None,
    only_from: tuple[str, ...] | None = None,
) -> str | None:
    """Append ``decisions`` (a transfer's steps) and, with ``state``, move the call there
    (only from ``only_from`` states when given; never out of a final state). Publishes
    ``call.updated`` when the state changed; returns the state the call is in after."""
    row = await conn.fetchrow(
        """WITH old AS (SELECT id, state FROM calls WHERE id = $1 FOR UPDATE)
           UPDATE calls c SET decisions = c.decisions || $2::jsonb, updated_at = now(),
                  state = CASE WHEN $3::text IS NULL OR c.state IN ('completed', 'abandoned', 'failed')
                                    OR ($4::text[] IS NOT NULL AND NOT c.state = ANY($4::text[]))
                               THEN c.state ELSE $3 END
             FROM old WHERE c.id = old.id
           RETURNING c.state, old.state AS before""",
        call_id, decisions, state, list(only_from) if only_from is not None else None,
    )
    if row is None:
        return None
    if row["state"] != row["before"]:
        await publish(conn, "call.updated", {"call_id": call_id, "state": row["state"]})
    return str(row["state"])


async def set_answered_by(conn: asyncpg.Connection, call_id: int, answered_by: str) -> None:
    """Who took the call, when nobody is on record yet (an expert reached by Dial())."""
    await conn.execute(
        "UPDATE calls SET answered_by = coalesce(answered_by, $2), updated_at = now() WHERE id = $1",
        call_id, answered_by)


# ---- seats: each agent's and expert's live state and phone ------------------------------
# Every write to ``seats`` is here; every change of state publishes ``seat.changed``.

SEAT_COLUMNS = "user_id, state, reason, since, current_call_id, interface, skills"


async def _seat_changed(conn: asyncpg.Connection, user_ids: Any, state: str) -> None:
    await publish_many(conn, [("seat.changed", {"user_id": u, "state": state}) for u in user_ids])


async def ensure_seat(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> asyncpg.Record:
    """The person's seat row; a first visit creates it ``offline``."""
    row = await conn.fetchrow(
        f"""INSERT INTO seats (user_id) VALUES ($1)
            ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
            RETURNING {SEAT_COLUMNS}""",  # noqa: S608 (constant column names)
        user_id,
    )
    assert row is not None
    return row


async def set_seat_state(conn: asyncpg.Connection, user_id: int, state: str, reason: str | None) -> asyncpg.Record:
    """A state the person chose (the console's transition table decided it may)."""
    row = await conn.fetchrow(
        f"""UPDATE seats SET state = $2, reason = $3, since = now(), updated_at = now(),
                   current_call_id = CASE WHEN $2 = 'after_call' THEN current_call_id END
             WHERE user_id = $1 RETURNING {SEAT_COLUMNS}""",  # noqa: S608
        user_id, state, reason,
    )
    await _seat_changed(conn, [user_id], state)
    return row


async def seat_on_call(conn: asyncpg.Connection, user_id: int, call_id: int, *, notify: bool = True) -> bool:
    """The seat is on ``call_id`` (a queue member answered, an expert was chosen).
    Idempotent; True when this changed the row."""
    row = await conn.fetchrow(
        """INSERT INTO seats (user_id, state, since, current_call_id)
           VALUES ($1, 'on_call', now(), $2)
           ON CONFLICT (user_id) DO UPDATE
                 SET state = 'on_call', reason = NULL, since = now(), updated_at = now(),
                     current_call_id = EXCLUDED.current_call_id
               WHERE seats.current_call_id IS DISTINCT FROM EXCLUDED.current_call_id
                  OR seats.state <> 'on_call'
           RETURNING user_id""",
        user_id, call_id,
    )
    if row is not None and notify:
        await _seat_changed(conn, [user_id], "on_call")
    return row is not None


async def seats_leave_call(conn: asyncpg.Connection, call_id: int, *, except_user: int | None = None,
                           notify: bool = True) -> list[int]:
    """Whoever is on ``call_id`` (but ``except_user``) moves on to after-call work
    (``notify=False``: the caller publishes ``seat.changed`` with its own events)."""
    rows = await conn.fetch(
        """UPDATE seats SET state = 'after_call', current_call_id = NULL, since = now(), updated_at = now()
            WHERE current_call_id = $1 AND user_id IS DISTINCT FROM $2 RETURNING user_id""",
        call_id, except_user,
    )
    users = [r["user_id"] for r in rows]
    if notify:
        await _seat_changed(conn, users, "after_call")
    return users


async def free_seat(conn: asyncpg.Connection, user_id: int, call_id: int) -> bool:
    """An expert chosen for ``call_id`` who never picked up is ready again."""
    done = await conn.fetchval(
        """UPDATE seats SET state = 'ready', current_call_id = NULL, since = now(), updated_at = now()
            WHERE user_id = $1 AND current_call_id = $2 RETURNING 1""",
        user_id, call_id,
    )
    if done:
        await _seat_changed(conn, [user_id], "ready")
    return bool(done)


async def finish_wrapups(conn: asyncpg.Connection, wrapup_seconds: float) -> list[int]:
    """Seats in after-call work for ``wrapup_seconds`` are ready again."""
    rows = await conn.fetch(
        """UPDATE seats SET state = 'ready', reason = NULL, since = now(), updated_at = now()
            WHERE state = 'after_call' AND since <= now() - make_interval(secs => $1)
        RETURNING user_id""",
        float(wrapup_seconds),
    )
    users = [r["user_id"] for r in rows]
    await _seat_changed(conn, users, "ready")
    return users


async def set_seat_phone(conn: asyncpg.Connection, user_id: int, interface: str | None, skills: list[str]) -> None:
    """The seat's phone (unique across seats: raises ``UniqueViolationError``) and skills."""
    await ensure_seat(conn, user_id)
    await conn.execute(
        """UPDATE seats SET interface = $2, skills = $3, phone_updated_at = now(), updated_at = now()
            WHERE user_id = $1""", user_id, interface, skills)
