"""Asterisk's call records: ``Master.csv`` (cdr_csv), ``queue_log``, and the ``cdr``
table written by cdr_pgsql, as facts of exactly one record per citizen call.

Every source row is stored once (keyed by a hash of its content, so reading a file
again after a lost offset is harmless). CDR rows are grouped by ``linkedid`` (the
uniqueid when Asterisk does not log it); in a group, the **citizen's channel** is the
one whose rows carry the tag the generated dialplan sets, ``CDR(userfield) =
hotline:<line>`` (``:fallback`` when the backend did not route the call), and its
uniqueid is ``calls.call_uid``; or the group belongs to the call the AGI recorded
(``calls.call_uid`` / ``calls.linkedid``). Every other leg (agent, sub-centre,
transfer, the Local ``;1`` side) is linked to that call (``cdr_records.call_id``) and
never counts as a call. A group with neither a tag nor a record waits unlinked until
one arrives (:func:`settle_pending`).

Nothing here writes ``calls`` itself: the facts go through the call operations of
:mod:`hotline.calls.store` (``record``, ``queue_join``, ``answer``, ``end``), the ones
the AGI, AMI and journal replay use, so one set of merge rules holds whatever order
the sources arrive in.

Master.csv columns (cdr.conf ``[csv]``): the 16 classic ones, then ``uniqueid``
(``loguniqueid=yes``), ``userfield`` (``loguserfield=yes``) and ``peeraccount,
linkedid, sequence`` (``newcdrcolumns=yes``); the layout is recognised by the
number of columns. Times are read in ``[ingest] cdr_timezone``; a CDR start that
disagrees with the AGI's start of the same channel is reported (:func:`_clock_check`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from hotline.calls.dialplan import CDR_LEG_TAG
from hotline.calls.store import MEMBER_SEAT, apply_op, make_entry, seat_of_member
from hotline.ingest import metrics
from hotline.phone import normalize

log = logging.getLogger(__name__)

BASE = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
        "start", "answer", "end", "duration", "billsec", "disposition", "amaflags")
NEW = ("peeraccount", "linkedid", "sequence")
LAYOUTS: dict[int, tuple[str, ...]] = {
    16: BASE,
    17: BASE + ("uniqueid",),
    18: BASE + ("uniqueid", "userfield"),
    19: BASE + NEW,
    20: BASE + ("uniqueid",) + NEW,
    21: BASE + ("uniqueid", "userfield") + NEW,
}
#: ``CDR(userfield)`` prefix of the citizen's channel (hotline/calls/dialplan.py)
TAG_PREFIX = "hotline:"
DEFAULT_SKEW_TOLERANCE = 90.0
#: queue_log events about members, never about a call (their callid is NONE or MANAGER, or a
#: channel's when paused from the dialplan)
_MEMBER_EVENTS = frozenset({"ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL",
                            "PENALTY", "QUEUESTART", "CONFIGRELOAD"})
_CDR_COLUMNS = ("row_hash", "origin", "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel",
                "lastapp", "lastdata", "start_at", "answer_at", "end_at", "duration", "billsec", "disposition",
                "amaflags", "uniqueid", "userfield", "peeraccount", "linkedid", "sequence")


class BadRow(ValueError):
    pass


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _time(value: str, tz: ZoneInfo) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz)
    except ValueError:
        raise BadRow(f"bad time {value!r}") from None


def _int(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRow(f"bad number {value!r}") from None


def parse_cdr_line(line: str, tz: ZoneInfo, origin: str) -> dict[str, Any]:
    """One Master.csv line as a ``cdr_records`` row (raises :class:`BadRow`)."""
    try:
        cells = next(csv.reader(io.StringIO(line)))
    except (csv.Error, StopIteration):
        raise BadRow("unreadable CSV line") from None
    layout = LAYOUTS.get(len(cells))
    if layout is None:
        raise BadRow(f"{len(cells)} columns; Master.csv has 16 to 21")
    raw = dict(zip(layout, cells, strict=True))
    row: dict[str, Any] = {k: (raw.get(k) or None) for k in _CDR_COLUMNS}
    row.update(
        row_hash=_hash(line.rstrip("\r\n")), origin=origin,
        start_at=_time(raw["start"], tz), answer_at=_time(raw["answer"], tz), end_at=_time(raw["end"], tz),
        duration=_int(raw["duration"]), billsec=_int(raw["billsec"]),
        sequence=_int(raw.get("sequence", "")),
    )
    return row


def cdr_row_from_table(record: dict[str, Any], tz: ZoneInfo, origin: str) -> dict[str, Any]:
    """A cdr_pgsql row (calldate, duration, billsec, ...) as a ``cdr_records`` row.
    cdr_pgsql keeps only the start; answer and end follow from duration and billsec."""
    start = record["calldate"]
    if start.tzinfo is None:
        start = start.replace(tzinfo=tz)
    duration, billsec = int(record.get("duration") or 0), int(record.get("billsec") or 0)
    row: dict[str, Any] = {k: (str(record[k]) if record.get(k) not in (None, "") else None)
                           for k in _CDR_COLUMNS if k in record}
    row.update(
        row_hash=_hash("|".join(f"{k}={record[k]}" for k in sorted(record))), origin=origin,
        start_at=start, end_at=start + timedelta(seconds=duration),
        answer_at=start + timedelta(seconds=duration - billsec) if billsec > 0 else None,
        duration=duration, billsec=billsec,
        sequence=int(record["sequence"]) if record.get("sequence") not in (None, "") else None,
    )
    return {k: row.get(k) for k in _CDR_COLUMNS}


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int = 0
    duplicates: int = 0
    bad: int = 0
    calls_matched: int = 0
    calls_created: int = 0
    #: call groups (CDR) and queue events left waiting for their call (see :func:`settle_pending`)
    waiting: int = 0

    def __add__(self, other: ImportResult) -> ImportResult:
        return ImportResult(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, ...]:
        return (self.imported, self.duplicates, self.bad, self.calls_matched, self.calls_created, self.waiting)

    def to_json(self) -> dict[str, int]:
        return dict(zip(("imported", "duplicates", "bad", "calls_matched", "calls_created", "waiting"),
                        self.astuple(), strict=True))


async def import_cdr_rows(
    conn: asyncpg.Connection, rows: Sequence[dict[str, Any]], *, default_line: str = "12345", bad: int = 0,
    skew_tolerance: float = DEFAULT_SKEW_TOLERANCE, tz_name: str = "",
) -> ImportResult:
    """Store CDR rows (inside the caller's transaction) and bring their calls up to date."""
    if not rows:
        return ImportResult(bad=bad)
    inserted = await conn.fetch(
        f"""INSERT INTO cdr_records ({", ".join(_CDR_COLUMNS)})
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                 $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                                 $12::timestamptz[], $13::timestamptz[], $14::timestamptz[], $15::int[],
                                 $16::int[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[],
                                 $22::text[], $23::int[])
            ON CONFLICT (row_hash) DO NOTHING
            RETURNING coalesce(nullif(linkedid, ''), uniqueid) AS grp""",  # noqa: S608 (constant columns)
        *([r[c] for r in rows] for c in _CDR_COLUMNS),
    )
    groups = sorted({r["grp"] for r in inserted if r["grp"]})
    outcomes = await _settle_groups(conn, groups, _Rules(default_line, skew_tolerance, tz_name))
    matched = sum(o == "matched" for o in outcomes.values())
    created = sum(o == "created" for o in outcomes.values())
    metrics.ASTERISK_ROWS.labels("cdr", "imported").inc(len(inserted))
    metrics.ASTERISK_ROWS.labels("cdr", "duplicate").inc(len(rows) - len(inserted))
    waiting = sum(o is None for o in outcomes.values())
    return ImportResult(len(inserted), len(rows) - len(inserted), bad, matched, created, waiting)


@dataclass(frozen=True, slots=True)
class Tag:
    """``CDR(userfield)`` the generated dialplan sets on the citizen's channel."""

    line: str
    fallback: bool  # the backend did not route the call ([hotline-fallback])


def parse_tag(userfield: str | None) -> Tag | None:
    """``hotline:<line>`` or ``hotline:<line>:fallback``; None for any other userfield."""
    if not userfield or not userfield.startswith(TAG_PREFIX):
        return None
    parts = userfield.split(":")
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    return Tag(parts[1], "fallback" in parts[2:])


@dataclass(frozen=True, slots=True)
class _Rules:
    default_line: str
    skew_tolerance: float
    tz_name: str


_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]+(;\d+)?$")


def leg_of(userfield: str | None) -> str | None:
    """The call uid a ``hotline-leg:<call_uid>`` userfield names (a leg the backend
    originated for that call); None for any other userfield."""
    if userfield and userfield.startswith(CDR_LEG_TAG):
        return userfield[len(CDR_LEG_TAG):] or None
    return None


def interface_of(channel: str | None) -> str | None:
    """``Local/8001@agents-00000006;1`` → ``Local/8001@agents``; ``PJSIP/8001-0000a1`` → ``PJSIP/8001``."""
    return _CHANNEL_SUFFIX.sub("", channel) if channel else None


def format_offset(seconds: float) -> str:
    """``+8:00``, ``-0:05``: an offset rounded to the minute, as a time zone would be written."""
    minutes = round(abs(seconds) / 60)
    return f"{'-' if seconds < 0 else '+'}{minutes // 60}:{minutes % 60:02d}"


#: the citizen call of each linkedid group, in one statement: the tagged channel's record,
#: else the record of one of the group's channels (the AGI's call_uid) or whose linkedid is
#: the group's. $1 groups, $2 channel uniqueids, $3 tagged: one row per (group, channel).
_FIND_CALLS = """
WITH m AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bool[]) AS m(grp, uid, tagged)),
     g AS (SELECT DISTINCT grp FROM m),
     cand AS (
        SELECT g.grp, c.id FROM g JOIN calls c ON c.linkedid = g.grp
        UNION
        SELECT g.grp, c.id FROM g JOIN calls c ON c.call_uid = g.grp
        UNION
        SELECT m.grp, c.id FROM m JOIN calls c ON c.call_uid = m.uid)
SELECT DISTINCT ON (cand.grp) cand.grp, c.id, c.call_uid, c.source, c.started_at, c.ended_at,
       c.disposition, c.agent_id
  FROM cand JOIN calls c ON c.id = cand.id
 ORDER BY cand.grp,
          EXISTS (SELECT 1 FROM m WHERE m.grp = cand.grp AND m.uid = c.call_uid AND m.tagged) DESC,
          EXISTS (SELECT 1 FROM m WHERE m.grp = cand.grp AND m.uid = c.call_uid) DESC,
          (c.source = 'agi') DESC, c.id"""


async def _find_calls(conn: asyncpg.Connection, rows_of: dict[str, list[asyncpg.Record]]
                      ) -> dict[str, asyncpg.Record]:
    # a row stands for its own channel's call, or for the call its leg tag names
    pairs = list(dict.fromkeys((grp, leg_of(r["userfield"]) or r["uniqueid"], bool(parse_tag(r["userfield"])))
                               for grp, rows in rows_of.items() for r in rows if r["uniqueid"]))
    groups_only = [g for g in rows_of if not any(p[0] == g for p in pairs)]
    pairs += [(g, g, False) for g in groups_only]
    if not pairs:
        return {}
    found = await conn.fetch(_FIND_CALLS, [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs])
    return {r["grp"]: r for r in found}


async def _settle_groups(conn: asyncpg.Connection, groups: Sequence[str], rules: _Rules
                         ) -> dict[str, str | None]:
    """Bring the calls of these linkedid groups up to date, a batch at once: per group
    ``matched`` (the call existed), ``created`` (recorded from the tagged CDR row), None
    (nobody can say which call these legs belong to yet: they wait unlinked). A call
    whose record already holds what the rows say (the usual case: the AGI and AMI told
    it live) is only linked: no operation, no look-up of the seat."""
    if not groups:
        return {}
    rows_of: dict[str, list[asyncpg.Record]] = {g: [] for g in groups}
    for r in await conn.fetch(
            """SELECT *, coalesce(nullif(linkedid, ''), uniqueid) AS grp FROM cdr_records
                WHERE coalesce(nullif(linkedid, ''), uniqueid) = ANY($1::text[])
                ORDER BY start_at NULLS LAST, id""", list(groups)):
        rows_of[r["grp"]].append(r)
    calls = await _find_calls(conn, rows_of)
    outcomes: dict[str, str | None] = {}
    for grp, rows in rows_of.items():
        if grp in calls:
            outcomes[grp] = "matched"
            continue
        tagged = [r for r in rows if r["uniqueid"] and parse_tag(r["userfield"])]
        if not tagged:
            outcomes[grp] = None
            continue
        first = tagged[0]
        data = _record_data(grp, first, [r for r in rows if r["uniqueid"] == first["uniqueid"]])
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM hotlines WHERE number = $1)",
                                   data["hotline_number"]):
            data["decisions"].append({"step": "line", "outcome": "unknown_number",
                                      "tagged": data["hotline_number"], "line": rules.default_line})
            data["hotline_number"] = rules.default_line
        await apply_op(conn, make_entry("record", first["uniqueid"], data))
        outcomes[grp] = "created"
    if any(o == "created" for o in outcomes.values()):
        calls.update(await _find_calls(conn, {g: rows_of[g] for g, o in outcomes.items() if o == "created"}))
    settled = {g: calls[g] for g in groups if g in calls}
    if not settled:
        return outcomes
    # every leg belongs to its call, in one statement
    await conn.execute(
        """UPDATE cdr_records r SET call_id = l.call_id
             FROM unnest($1::text[], $2::bigint[]) AS l(grp, call_id)
            WHERE coalesce(nullif(r.linkedid, ''), r.uniqueid) = l.grp AND r.call_id IS DISTINCT FROM l.call_id""",
        list(settled), [c["id"] for c in settled.values()])
    # queue_log events that arrived before their call was known, in Asterisk's order
    callids = sorted({r["uniqueid"] for g in settled for r in rows_of[g] if r["uniqueid"]}
                     | {c["call_uid"] for c in settled.values()} | set(settled))
    pending = await conn.fetch(
        "SELECT * FROM queue_log_events WHERE call_id IS NULL AND callid = ANY($1) ORDER BY at, id", callids)
    await _apply_queue_events(conn, pending)
    for grp, call in settled.items():
        citizen = [r for r in rows_of[grp] if r["uniqueid"] == call["call_uid"]]
        if citizen:
            shift = await _clock_check(conn, call, citizen, rules) if call["source"] == "agi" else timedelta(0)
            await _end_from_cdr(conn, call, citizen, shift, known=not pending)
    return outcomes


def _record_data(grp: str, first: asyncpg.Record, citizen: list[asyncpg.Record]) -> dict[str, Any]:
    tag = parse_tag(first["userfield"])
    assert tag is not None
    src = first["src"] or ""
    number = normalize(src)
    decision: dict[str, Any] = {"step": "cdr", "outcome": "recorded_from_cdr", "line": tag.line}
    if tag.fallback:
        decision["reason"] = "the backend did not route the call: Asterisk's fallback queued it"
    else:
        decision["reason"] = "no record from the backend yet (journaled or lost): made from the CDR"
    started = min((r["start_at"] for r in citizen if r["start_at"]), default=None) or first["start_at"]
    return {
        "linkedid": grp, "channel": first["channel"], "source": "cdr", "hotline_number": tag.line,
        "dialled": first["dst"], "caller_number": number.number, "caller_raw": src or None,
        "caller_kind": number.kind.value, "route": "fallback" if tag.fallback else None,
        "decisions": [decision], "started_at": started.isoformat() if started else None,
    }


async def _clock_check(conn: asyncpg.Connection, call: asyncpg.Record, citizen: list[asyncpg.Record],
                       rules: _Rules) -> timedelta:
    """The citizen's CDR start against the AGI's start of the same channel: beyond the
    tolerance the configured zone (or the PBX clock) is wrong: reported, stored on the
    rows, and the CDR's times are re-anchored on the AGI's (their differences hold)."""
    starts = [r["start_at"] for r in citizen if r["start_at"]]
    if not starts:
        return timedelta(0)
    skew = (min(starts) - call["started_at"]).total_seconds()
    metrics.CDR_CLOCK_SKEW.set(round(skew))
    if abs(skew) <= rules.skew_tolerance:
        return timedelta(0)
    metrics.CDR_CLOCK_SKEWED.inc()
    await conn.execute("UPDATE cdr_records SET clock_skew_seconds = $2 WHERE id = ANY($1::bigint[])",
                       [r["id"] for r in citizen], round(skew))
    log.warning("CDR of call %s starts %s from the AGI's record (%s s; cdr_timezone = %r): is cdr_timezone "
                "right? (cdr.conf usegmtime = yes and cdr_timezone = \"UTC\" is the safe pair); its times "
                "are taken relative to the AGI's start", call["call_uid"], format_offset(skew), round(skew),
                rules.tz_name)
    return timedelta(seconds=skew)


async def _end_from_cdr(conn: asyncpg.Connection, call: asyncpg.Record, citizen: list[asyncpg.Record],
                        shift: timedelta, *, known: bool = True) -> None:
    """Asterisk writes a channel's CDR rows when it hangs up: the citizen's rows end the
    call (end semantics: a call already ended keeps its outcome, and only an agent the
    record lacks would be noted). ``known``: ``call`` is the record as it is now (no
    other operation of this batch touched it), so an end that adds nothing is skipped."""
    ends = [r["end_at"] for r in citizen if r["end_at"]]
    if not ends:
        return
    ended = known and call["ended_at"] is not None
    if ended and call["agent_id"] is not None:
        return  # told live already (the AGI's hangup, AMI): the rows are linked, nothing to add
    data: dict[str, Any] = {"at": (max(ends) - shift).isoformat(), "source": "cdr"}
    answered = next((r for r in citizen if r["disposition"] == "ANSWERED" and r["dstchannel"]
                     and (r["billsec"] or 0) > 0), None)
    if answered is not None:
        interface = interface_of(answered["dstchannel"])
        data.update(dialstatus="ANSWER", answeredtime=answered["billsec"], dial_target=interface)
        seat = await seat_of_member(conn, interface) if interface else None
        if seat is not None:
            data["agent_id"] = seat[0]
    else:
        data["dialstatus"] = (citizen[-1]["disposition"] or "").replace(" ", "") or None
    if ended and data.get("agent_id") is None:
        return  # the end would add nothing
    await apply_op(conn, make_entry("end", call["call_uid"], data), live=False)


async def settle_pending(
    conn: asyncpg.Connection, *, within: timedelta = timedelta(days=1), default_line: str = "12345",
    skew_tolerance: float = DEFAULT_SKEW_TOLERANCE, tz_name: str = "",
) -> int:
    """Legs and queue events imported before their call existed, whose call now exists
    (the journal replayed the AGI's record, a tagged row came in a later batch): link
    and apply them. Returns how many groups and events were settled."""
    groups = [r["grp"] for r in await conn.fetch(
        """SELECT DISTINCT coalesce(nullif(r.linkedid, ''), r.uniqueid) AS grp
             FROM cdr_records r
            WHERE r.call_id IS NULL AND r.imported_at > now() - $1::interval
              AND EXISTS (SELECT 1 FROM calls c
                           WHERE c.call_uid = r.uniqueid
                              OR c.linkedid = coalesce(nullif(r.linkedid, ''), r.uniqueid)
                              OR r.userfield = $2 || c.call_uid)""", within, CDR_LEG_TAG)]
    outcomes = await _settle_groups(conn, groups, _Rules(default_line, skew_tolerance, tz_name))
    settled = sum(o is not None for o in outcomes.values())
    events = await conn.fetch(
        """SELECT e.* FROM queue_log_events e
            WHERE e.call_id IS NULL AND e.imported_at > now() - $1::interval
              AND EXISTS (SELECT 1 FROM calls c WHERE c.call_uid = e.callid OR c.linkedid = e.callid)
            ORDER BY e.at, e.id""", within)
    return settled + await _apply_queue_events(conn, events)


# ---- queue_log --------------------------------------------------------------------

def parse_queue_log_line(line: str, origin: str) -> dict[str, Any] | None:
    """``epoch|callid|queue|agent|event|data...`` as a row; None for rows about no call."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5:
        raise BadRow(f"{len(parts)} fields; queue_log has at least 5")
    try:
        at = datetime.fromtimestamp(float(parts[0]), ZoneInfo("UTC"))
    except ValueError:
        raise BadRow(f"bad time {parts[0]!r}") from None
    if parts[1] in ("", "NONE", "MANAGER") or parts[4] in _MEMBER_EVENTS:
        return None  # about a queue or a member (added by AMI, paused), not a call
    return {"row_hash": _hash(line.rstrip("\r\n")), "origin": origin, "at": at, "callid": parts[1],
            "queuename": parts[2] or None, "agent": parts[3] if parts[3] not in ("", "NONE") else None,
            "event": parts[4], "data": parts[5:]}


async def import_queue_log_rows(conn: asyncpg.Connection, rows: Sequence[dict[str, Any]], *, bad: int = 0
                                ) -> ImportResult:
    if not rows:
        return ImportResult(bad=bad)
    inserted = await conn.fetch(
        """INSERT INTO queue_log_events (row_hash, origin, at, callid, queuename, agent, event, data)
           SELECT h, o, a, c, q, g, e, string_to_array(d, '|')
             FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[]) AS t(h, o, a, c, q, g, e, d)
           ON CONFLICT (row_hash) DO NOTHING
           RETURNING *""",
        [r["row_hash"] for r in rows], [r["origin"] for r in rows], [r["at"] for r in rows],
        [r["callid"] for r in rows], [r["queuename"] for r in rows], [r["agent"] for r in rows],
        [r["event"] for r in rows], ["|".join(r["data"]) for r in rows],
    )
    matched = await _apply_queue_events(conn, sorted(inserted, key=lambda r: (r["at"], r["id"])))
    metrics.ASTERISK_ROWS.labels("queue_log", "imported").inc(len(inserted))
    metrics.ASTERISK_ROWS.labels("queue_log", "duplicate").inc(len(rows) - len(inserted))
    return ImportResult(len(inserted), len(rows) - len(inserted), bad, matched, 0, len(inserted) - matched)


async def _apply_queue_events(conn: asyncpg.Connection, events: Iterable[asyncpg.Record]) -> int:
    """Apply queue events to their calls through the call operations, like the AGI and
    AMI do: ENTERQUEUE → ``queue_join`` (offered), CONNECT → ``answer`` (the member
    interface names the seat), COMPLETE*/ABANDON → ``end``. EXITWITHTIMEOUT, EXITEMPTY and
    EXITWITHKEY only leave a queue (a dual line's skill queue overflows into the 12345
    queue): noted, the end comes from the hangup (AGI, CDR). Returns how many events
    found their call; the others wait (``call_id`` NULL) for it."""
    events = list(events)
    if not events:
        return 0
    # every event's call in one round trip (its channel's record, else the one it is linked
    # to), with what the record already holds
    found = {r["callid"]: r for r in await conn.fetch(
        """SELECT DISTINCT ON (e) e AS callid, c.id, c.call_uid, c.state, c.queue, c.queued_at,
                  c.answered_at, c.agent_id, c.ended_at, c.disposition
             FROM unnest($1::text[]) AS e JOIN calls c ON c.call_uid = e OR c.linkedid = e
            ORDER BY e, (c.call_uid = e) DESC, c.id""", sorted({ev["callid"] for ev in events}))}
    per_call: dict[str, list[asyncpg.Record]] = {}
    for ev in events:
        if ev["callid"] in found:
            per_call.setdefault(found[ev["callid"]]["call_uid"], []).append(ev)
    calls = {r["call_uid"]: r for r in found.values()}
    agents = await _member_seats(conn, {ev["agent"] for evs in per_call.values() for ev in evs
                                        if ev["event"] == "CONNECT" and ev["agent"]
                                        and found[ev["callid"]]["answered_at"] is not None})
    linked: list[tuple[int, int]] = []
    for uid, evs in per_call.items():
        call = calls[uid]
        # the sources told it live (AMI's join, the gosub's answer, the AGI's hangup): when
        # every event of this call only repeats what the record holds, they are only linked
        if not all(_repeats(call, ev, agents) for ev in evs):
            for ev in evs:
                entry = _queue_entry(uid, ev)
                if entry is not None:
                    await apply_op(conn, entry, live=False)
        linked.extend((ev["id"], call["id"]) for ev in evs)
    if linked:  # the events now belong to their calls, in one statement
        await conn.execute(
            """UPDATE queue_log_events q SET call_id = l.call_id
                 FROM unnest($1::bigint[], $2::bigint[]) AS l(id, call_id) WHERE q.id = l.id""",
            [i for i, _ in linked], [c for _, c in linked])
    return len(linked)


async def _member_seats(conn: asyncpg.Connection, members: set[str]) -> dict[str, int | None]:
    """The seat each queue member name stands for (``hotline.calls.store.seat_of_member``), in one statement."""
    if not members:
        return {}
    rows = await conn.fetch(
        f"""SELECT q.member, s.user_id FROM unnest($1::text[]) AS q(member)
              LEFT JOIN LATERAL ({MEMBER_SEAT.format(member="q.member", only="")}) s ON true""",  # noqa: S608
        sorted(members))
    return {r["member"]: r["user_id"] for r in rows}


def _repeats(call: asyncpg.Record, ev: asyncpg.Record, agents: dict[str, int | None]) -> bool:
    """True when applying ``ev`` to ``call`` (as it is) would change nothing."""
    kind = ev["event"]
    if kind == "ENTERQUEUE":
        return (call["queued_at"] is not None and call["state"] not in ("ringing", "transferred")
                and ev["queuename"] in (None, call["queue"]))
    if kind == "CONNECT":
        return call["answered_at"] is not None and agents.get(ev["agent"]) in (None, call["agent_id"])
    if kind in ("COMPLETECALLER", "COMPLETEAGENT"):
        return call["ended_at"] is not None
    if kind == "ABANDON":
        return call["ended_at"] is not None and call["disposition"] is not None
    return kind not in ("EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY")  # others are only linked


def _queue_entry(uid: str, ev: asyncpg.Record) -> dict[str, Any] | None:
    kind, at = ev["event"], ev["at"].isoformat()
    if kind == "ENTERQUEUE":
        return make_entry("queue_join", uid, {"at": at, "queue": ev["queuename"]})
    if kind == "CONNECT":
        return make_entry("answer", uid, {"at": at, "answered_by": ev["agent"], "source": "queue_log"})
    if kind in ("COMPLETECALLER", "COMPLETEAGENT"):
        return make_entry("end", uid, {"at": at, "source": "queue_log", "queuestatus": kind})
    if kind == "ABANDON":
        return make_entry("end", uid, {"at": at, "source": "queue_log", "queuestatus": kind,
                                       "disposition": "abandoned"})
    if kind in ("EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"):
        return make_entry("update", uid, {"append": [
            {"step": "queue_exit", "source": "queue_log", "queue": ev["queuename"], "event": kind, "at": at}]})
    return None


# ---- lines and tables -------------------------------------------------------------

async def import_lines(
    conn: asyncpg.Connection, kind: str, lines: Sequence[str], *, origin: str, tz: ZoneInfo,
    default_line: str = "12345", skew_tolerance: float = DEFAULT_SKEW_TOLERANCE,
) -> ImportResult:
    """Parse and import complete lines of a Master.csv or queue_log (caller's transaction)."""
    parsed: list[dict[str, Any]] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            row = parse_cdr_line(line, tz, origin) if kind == "cdr_csv" else parse_queue_log_line(line, origin)
        except BadRow:
            bad += 1
            metrics.ASTERISK_ROWS.labels(kind, "bad").inc()
            continue
        if row is not None:
            parsed.append(row)
    if kind == "cdr_csv":
        return await import_cdr_rows(conn, parsed, default_line=default_line, bad=bad,
                                     skew_tolerance=skew_tolerance, tz_name=str(tz))
    return await import_queue_log_rows(conn, parsed, bad=bad)


async def import_cdr_table(
    source: asyncpg.Connection, target: asyncpg.Pool, *, table: str = "cdr", since: datetime | None = None,
    tz: ZoneInfo, default_line: str = "12345", chunk: int = 1000,
    skew_tolerance: float = DEFAULT_SKEW_TOLERANCE,
) -> ImportResult:
    """Import a cdr_pgsql table (from any database), in chunks, each in one transaction."""
    ident = await source.fetchval("SELECT quote_ident($1)", table)
    total = ImportResult()
    query = f"SELECT * FROM {ident} WHERE ($1::timestamp IS NULL OR calldate >= $1) ORDER BY calldate"  # noqa: S608
    async with source.transaction():
        cursor = source.cursor(query, since.replace(tzinfo=None) if since else None)
        batch: list[dict[str, Any]] = []
        async for record in cursor:
            batch.append(cdr_row_from_table(dict(record), tz, f"table:{table}"))
            if len(batch) >= chunk:
                total += await _import_chunk(target, batch, default_line, skew_tolerance, str(tz))
                batch = []
        if batch:
            total += await _import_chunk(target, batch, default_line, skew_tolerance, str(tz))
    return total


async def _import_chunk(pool: asyncpg.Pool, rows: list[dict[str, Any]], default_line: str,
                        skew_tolerance: float, tz_name: str) -> ImportResult:
    async with pool.acquire() as conn, conn.transaction():
        return await import_cdr_rows(conn, rows, default_line=default_line, skew_tolerance=skew_tolerance,
                                     tz_name=tz_name)
