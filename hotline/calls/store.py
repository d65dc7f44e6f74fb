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
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hotline.db.errors import is_unavailable
from hotline.errors import Unavailable
from hotline.events import CHANNEL as EVENTS_CHANNEL
from hotline.events import Topic, publish, publish_many

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


#: "the database is not there" as opposed to a bug or bad data: the one predicate
#: (hotline.db.is_unavailable), under the name the call flows use
is_connection_failure = is_unavailable


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
             WHERE pg_notify($1, json_build_object('topic', '{Topic.CALL_UPDATED}', 'payload',
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
    await publish(conn, Topic.CALL_UPDATED, {"call_id": call_id, "state": "ringing"})
    return int(call_id)


async def _queue_join(conn: asyncpg.Connection, uid: str, data: dict[str, Any]) -> int | None:
    """The call entered an Asterisk queue (AMI ``QueueCallerJoin``, queue_log ``ENTERQUEUE``,
    a simulated queue): *offered* from this moment; the first queue's time is kept, the
    queue name follows the call (a dual line's overflow into the 12345 queue). One
    statement; ``call.updated`` only when something changed (the same join told again
    by queue_log after AMI costs one round trip and wakes nobody)."""
    row = await conn.fetchrow(
        f"""WITH up AS (
               UPDATE calls SET queued_at = coalesce(queued_at, $2), queue = coalesce($3, queue),
                      state = CASE WHEN state IN ('ringing', 'queued', 'transferred') THEN 'queued' ELSE state END,
                      updated_at = now()
                WHERE call_uid = $1
                  AND (queued_at IS NULL OR queue IS DISTINCT FROM coalesce($3, queue)
                       OR state IN ('ringing', 'transferred'))
                RETURNING id, state)
           SELECT coalesce((SELECT id FROM up), (SELECT id FROM calls WHERE call_uid = $1)) AS id,
                  (SELECT pg_notify($4, json_build_object('topic', '{Topic.CALL_UPDATED}', 'payload',
                          json_build_object('call_id', id, 'state', state))::text) FROM up) AS notified""",  # noqa: S608 (the topic constant)
        uid, _ts(data["at"]), data.get("queue"), EVENTS_CHANNEL,
    )
    return None if row is None or row["id"] is None else int(row["id"])


#: operations that are one statement: applied without a transaction around them
SINGLE_STATEMENT_OPS = frozenset({"start", "queue_join", "answer", "end"})


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
        await publish(conn, Topic.CALL_UPDATED, {"call_id": row["id"], "state": row["state"]})
    return int(row["id"])


#: the seat a queue member names (``{member}``): its interface, else the member name the
#: seat was added with (``hotline.calls.members``: the display name, else the username;
#: queue_log's agent field). An ambiguous name names nobody. Columns ``user_id, interface``.
MEMBER_SEAT = """
    SELECT user_id, coalesce(interface, {member}) AS interface FROM (
        SELECT s.user_id, s.interface, coalesce(s.interface = {member}, false) AS exact,
               count(*) OVER () AS n,
               row_number() OVER (ORDER BY coalesce(s.interface = {member}, false) DESC,
                                           (u.username = {member}) DESC) AS rn
          FROM seats s JOIN users u ON u.id = s.user_id
         WHERE (s.interface = {member} OR u.username = {member} OR u.display_name = {member}) {only}) m
     WHERE rn = 1 AND (n = 1 OR exact)"""

#: ``answer`` in one statement: the member's seat (when the caller did not name the agent),
#: the call (first answer time kept; nothing when the same answer is told again), the seat
#: on the call, and their events (``seat.changed``, ``call.offered`` = the screen-pop,
#: ``call.updated``) in that order. $1 uid, $2 member, $3 agent id, $4 at, $5 source of an
#: after-the-fact record (None: live), $6 at as told, $7 live, $8 the events channel.
_ANSWER = f"""
WITH member AS ({MEMBER_SEAT.format(member="$2::text", only="AND $3::bigint IS NULL")}),
     who AS (SELECT coalesce($3::bigint, (SELECT user_id FROM member)) AS agent_id,
                    coalesce((SELECT interface FROM member), $2::text) AS answered_by),
     up AS (
        UPDATE calls c
           SET state = CASE WHEN c.state IN ('completed', 'abandoned', 'failed') THEN c.state ELSE 'answered' END,
               answered_at = coalesce(c.answered_at, $4::timestamptz),
               wait_seconds = round(greatest(extract(epoch FROM coalesce(c.answered_at, $4) - c.started_at), 0), 3),
               agent_id = coalesce(who.agent_id, c.agent_id),
               -- answered from a queue: in it at the latest when answered (AMI's join and
               -- the member's gosub race; neither may make the wait negative)
               queued_at = least(coalesce(c.queued_at, c.started_at), coalesce(c.answered_at, $4)),
               answered_by = CASE WHEN $5::text IS NOT NULL AND c.answered_by IS NOT NULL THEN c.answered_by
                                  ELSE coalesce(who.answered_by, c.answered_by) END,
               decisions = c.decisions || jsonb_build_array(
                   jsonb_build_object('step', 'answer', 'by', who.answered_by, 'agent_id', who.agent_id,
                                      'at', $6::text)
                   || CASE WHEN $5::text IS NOT NULL THEN jsonb_build_object('source', $5::text)
                           ELSE '{{}}'::jsonb END),
               updated_at = now()
          FROM who
         WHERE c.call_uid = $1
           -- the same answer told again by another source (the member's gosub, AMI's
           -- AgentConnect, queue_log's CONNECT): nothing new, and no second screen-pop
           AND (c.answered_at IS NULL OR (who.agent_id IS NOT NULL AND who.agent_id IS DISTINCT FROM c.agent_id))
        RETURNING c.id, c.call_uid, c.hotline_number, who.agent_id),
     seat AS (
        INSERT INTO seats (user_id, state, since, current_call_id)
        SELECT agent_id, 'on_call', now(), id FROM up WHERE agent_id IS NOT NULL AND $7
        ON CONFLICT (user_id) DO UPDATE
              SET state = 'on_call', reason = NULL, since = now(), updated_at = now(),
                  current_call_id = EXCLUDED.current_call_id
            WHERE seats.current_call_id IS DISTINCT FROM EXCLUDED.current_call_id OR seats.state <> 'on_call'
        RETURNING user_id),
     events AS (
        SELECT 1 AS i, json_build_object('topic', '{Topic.SEAT_CHANGED}', 'payload',
                                         json_build_object('user_id', user_id, 'state', 'on_call')) AS m FROM seat
        UNION ALL
        SELECT 2, json_build_object('topic', '{Topic.CALL_OFFERED}', 'payload', json_build_object(
                   'call_id', id, 'user_id', agent_id, 'hotline_number', hotline_number))
          FROM up WHERE agent_id IS NOT NULL AND $7
        UNION ALL
        SELECT 3, json_build_object('topic', '{Topic.CALL_UPDATED}', 'payload',
                                    json_build_object('call_id', id, 'call_uid', call_uid, 'state', 'answered'))
          FROM up)
SELECT coalesce((SELECT id FROM up), (SELECT id FROM calls WHERE call_uid = $1)) AS id,
       (SELECT agent_id FROM who) AS agent_id,
       (SELECT count(pg_notify($8, m::text)) FROM (SELECT m FROM events ORDER BY i) e) AS notified"""  # noqa: S608 (constant SQL)


async def _answer(conn: asyncpg.Connection, uid: str, data: dict[str, Any], *, live: bool) -> int | None:
    """An agent's seat picked the call up from the queue (``agent_connect``, AMI's
    ``AgentConnect``, queue_log's ``CONNECT``). One statement. The seat the member names
    is written back into ``data["agent_id"]`` (the gosub tells the agent's phone)."""
    at = _ts(data["at"])
    assert at is not None
    agent_id = data.get("agent_id")
    row = await conn.fetchrow(
        _ANSWER, uid, data.get("answered_by") or None, agent_id, at, data.get("source") or None,
        str(data["at"]), live, EVENTS_CHANNEL)
    if row is None or row["id"] is None:
        log.warning("call %s: answer for an unknown call dropped", uid)
        return None
    if agent_id is None and row["agent_id"] is not None:
        data["agent_id"] = row["agent_id"]
    return int(row["id"])


async def seat_of_member(conn: asyncpg.Connection, member: str) -> tuple[int, str] | None:
    """``(user_id, interface)`` of a queue member as Asterisk names it (``MEMBER_SEAT``)."""
    row = await conn.fetchrow(MEMBER_SEAT.format(member="$1::text", only=""), member)
    return None if row is None else (int(row["user_id"]), row["interface"])


def _seconds(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


_FINAL = "('completed', 'abandoned', 'failed')"

#: ``end`` in one statement. The first end wins: it sets the outcome (answered, or
#: abandoned; a blocked call completes), wait and talk, and moves whoever was on the call
#: to after-call work. A later end from another source (the AGI's hangup replayed after
#: the CDR ended the call, AMI, queue_log) is noted only when it brings a fact the record
#: lacks (a disposition, the agent) and that source was not noted yet; which sources
#: reported the call stays visible anyway (their rows are linked to it). $1 uid, $2 ended
#: at, $3 DIALSTATUS (upper), $4 ANSWEREDTIME, $5 dial target, $6 disposition, $7 agent
#: id, $8 what the decision adds, $9 at as told, $10 source, $11 the late decision, $12
#: the events channel.
_END = f"""
WITH cur AS (
        SELECT id, state, route, started_at, disposition,
               -- a sub-centre (or expert) took the call through Dial(): Asterisk says for how long
               CASE WHEN answered_at IS NULL AND $3::text = 'ANSWER'
                    THEN greatest(started_at, $2::timestamptz - make_interval(secs => coalesce($4::float8, 0)))
                    ELSE answered_at END AS ans,
               CASE WHEN answered_at IS NULL AND $3::text = 'ANSWER'
                    THEN coalesce(nullif(answered_by, ''), nullif($5::text, ''), dial_target)
                    ELSE answered_by END AS answered_by
          FROM calls WHERE call_uid = $1 AND ended_at IS NULL FOR UPDATE),
     calc AS (
        SELECT cur.*,
               CASE WHEN state IN {_FINAL} THEN state
                    WHEN ans IS NOT NULL OR route = 'blocked' THEN 'completed'
                    ELSE 'abandoned' END AS new_state,
               coalesce(disposition,
                        CASE WHEN state NOT IN {_FINAL} AND ans IS NULL AND route = 'blocked' THEN 'blocked' END,
                        nullif($6::text, ''),
                        CASE WHEN ans IS NOT NULL THEN 'answered' ELSE 'abandoned' END) AS new_disposition
          FROM cur),
     up AS (
        UPDATE calls c
           SET state = calc.new_state, disposition = calc.new_disposition, ended_at = $2,
               answered_at = calc.ans, answered_by = calc.answered_by,
               wait_seconds = round(greatest(extract(epoch FROM coalesce(calc.ans, $2) - calc.started_at), 0), 3),
               talk_seconds = CASE WHEN calc.ans IS NOT NULL
                                   THEN round(greatest(extract(epoch FROM $2 - calc.ans), 0), 3) END,
               decisions = c.decisions || jsonb_build_array(
                   jsonb_build_object('step', 'hangup', 'at', $9::text, 'state', calc.new_state,
                                      'disposition', calc.new_disposition) || $8::jsonb),
               agent_id = coalesce(c.agent_id, $7::bigint), updated_at = now()
          FROM calc WHERE c.id = calc.id
        RETURNING c.id, c.call_uid, c.state),
     fill AS (
        UPDATE calls c
           SET disposition = coalesce(c.disposition, nullif($6::text, '')),
               agent_id = coalesce(c.agent_id, $7::bigint),
               decisions = c.decisions || jsonb_build_array($11::jsonb), updated_at = now()
         WHERE c.call_uid = $1 AND c.ended_at IS NOT NULL
           AND ((c.disposition IS NULL AND nullif($6::text, '') IS NOT NULL)
                OR (c.agent_id IS NULL AND $7::bigint IS NOT NULL))
           AND NOT c.decisions @> jsonb_build_array(jsonb_build_object('step', 'hangup', 'source', $10::text))
        RETURNING c.id),
     left_call AS (
        UPDATE seats s SET state = 'after_call', current_call_id = NULL, since = now(), updated_at = now()
          FROM up WHERE s.current_call_id = up.id
        RETURNING s.user_id),
     events AS (
        SELECT 0 AS i, json_build_object('topic', '{Topic.CALL_UPDATED}', 'payload', json_build_object(
                   'call_id', id, 'call_uid', call_uid, 'state', state)) AS m FROM up
        UNION ALL
        SELECT 1, json_build_object('topic', '{Topic.SEAT_CHANGED}', 'payload',
                                    json_build_object('user_id', user_id, 'state', 'after_call')) FROM left_call)
SELECT coalesce((SELECT id FROM up), (SELECT id FROM fill), (SELECT id FROM calls WHERE call_uid = $1)) AS id,
       (SELECT count(pg_notify($12, m::text)) FROM (SELECT m FROM events ORDER BY i) e) AS notified"""  # noqa: S608


async def _end(conn: asyncpg.Connection, uid: str, data: dict[str, Any]) -> int | None:
    """Finalise: answered or abandoned, wait and talk durations, disposition, who answered
    (one statement, ``_END``)."""
    ended_at = _ts(data["at"])
    assert ended_at is not None
    source = data.get("source") or "agi"
    extras = {key: data[key] for key in ("cause", "dialstatus", "queuestatus") if data.get(key)}
    decision = dict(extras)
    if source != "agi":
        decision["source"] = source
    late = {"step": "hangup", "source": source, "at": data["at"], "after_end": True, **extras}
    call_id = await conn.fetchval(
        _END, uid, ended_at, (data.get("dialstatus") or "").upper(), _seconds(data.get("answeredtime")),
        data.get("dial_target"), data.get("disposition"), data.get("agent_id"), decision, str(data["at"]),
        source, late, EVENTS_CHANNEL)
    if call_id is None:
        log.warning("call %s: end for an unknown call dropped", uid)
        return None
    return int(call_id)


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
        await publish(conn, Topic.CALL_UPDATED, {"call_id": call_id, "state": row["state"]})
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
    await publish_many(conn, [(Topic.SEAT_CHANGED, {"user_id": u, "state": state}) for u in user_ids])


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


async def set_seat_state(conn: asyncpg.Connection, user_id: int, state: str, reason: str | None, *,
                         forced_by: str | None = None) -> asyncpg.Record:
    """A state the person chose, or a supervisor (``forced_by``, their name: the person's
    console says who) chose for them; the console's transition tables decided it may."""
    row = await conn.fetchrow(
        f"""UPDATE seats SET state = $2, reason = $3, since = now(), updated_at = now(),
                   current_call_id = CASE WHEN $2 = 'after_call' THEN current_call_id END
             WHERE user_id = $1 RETURNING {SEAT_COLUMNS}""",  # noqa: S608
        user_id, state, reason,
    )
    if forced_by is None:
        await _seat_changed(conn, [user_id], state)
    else:
        await publish_many(conn, [(Topic.SEAT_CHANGED, {"user_id": user_id, "state": state, "forced_by": forced_by})])
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


async def finish_wrapups_due(conn: asyncpg.Connection, wrapup_seconds: float) -> tuple[list[int], float | None]:
    """Seats in after-call work for ``wrapup_seconds`` are ready again (one statement,
    their ``seat.changed`` events included): their user ids, and in how many seconds the
    next seat in after-call work is due (None: nobody is in after-call work)."""
    row = await conn.fetchrow(
        f"""WITH done AS (
               UPDATE seats SET state = 'ready', reason = NULL, since = now(), updated_at = now()
                WHERE state = 'after_call' AND since <= now() - make_interval(secs => $1)
               RETURNING user_id)
           SELECT ARRAY(SELECT user_id FROM done ORDER BY user_id) AS users,
                  (SELECT extract(epoch FROM min(since) + make_interval(secs => $1) - now())::float8
                     FROM seats WHERE state = 'after_call' AND user_id NOT IN (SELECT user_id FROM done)) AS due,
                  (SELECT count(pg_notify($2, json_build_object('topic', '{Topic.SEAT_CHANGED}', 'payload',
                                json_build_object('user_id', user_id, 'state', 'ready'))::text))
                     FROM (SELECT user_id FROM done ORDER BY user_id) d) AS notified""",  # noqa: S608 (the topic constant)
        float(wrapup_seconds), EVENTS_CHANNEL,
    )
    assert row is not None
    return list(row["users"]), row["due"]


async def set_seat_phone(conn: asyncpg.Connection, user_id: int, interface: str | None, skills: list[str]) -> None:
    """The seat's phone (unique across seats: raises ``UniqueViolationError``) and skills."""
    await ensure_seat(conn, user_id)
    await conn.execute(
        """UPDATE seats SET interface = $2, skills = $3, phone_updated_at = now(), updated_at = now()
            WHERE user_id = $1""", user_id, interface, skills)
