"""Asterisk's call records: ``Master.csv`` (cdr_csv), ``queue_log``, and the ``cdr``
table written by cdr_pgsql.

Every source row is stored once (keyed by a hash of its content, so reading a file
again after a lost offset is harmless), rows are grouped into calls by
``linkedid`` (the inbound channel's uniqueid when Asterisk does not log it), and
each group is matched to the ``calls`` row our AGI flows wrote
(``calls.call_uid = linkedid`` or ``calls.linkedid = linkedid``). A matched call is
completed from the CDR (only empty columns are filled); an unmatched one gets one
new ``calls`` row with ``source = 'cdr'``. Either way one call is one row: no
double counting.

Master.csv columns (cdr.conf ``[csv]``): the 16 classic ones, then ``uniqueid``
(``loguniqueid=yes``), ``userfield`` (``loguserfield=yes``) and ``peeraccount,
linkedid, sequence`` (``newcdrcolumns=yes``); the layout is recognised by the
number of columns. Times are the Asterisk server's local time.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from hotline.ingest import metrics
from hotline.phone import normalize

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
_OPEN_STATES = ("ringing", "queued", "answered", "transferred")
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

    def __add__(self, other: ImportResult) -> ImportResult:
        return ImportResult(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, ...]:
        return (self.imported, self.duplicates, self.bad, self.calls_matched, self.calls_created)

    def to_json(self) -> dict[str, int]:
        return dict(zip(("imported", "duplicates", "bad", "calls_matched", "calls_created"), self.astuple(),
                        strict=True))


async def import_cdr_rows(
    conn: asyncpg.Connection, rows: Sequence[dict[str, Any]], *, default_line: str = "12345", bad: int = 0
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
    matched, created = await _settle_groups(conn, groups, default_line)
    metrics.ASTERISK_ROWS.labels("cdr", "imported").inc(len(inserted))
    metrics.ASTERISK_ROWS.labels("cdr", "duplicate").inc(len(rows) - len(inserted))
    return ImportResult(len(inserted), len(rows) - len(inserted), bad, matched, created)


async def _settle_groups(conn: asyncpg.Connection, groups: list[str], default_line: str) -> tuple[int, int]:
    if not groups:
        return 0, 0
    aggs = await conn.fetch(
        """SELECT grp,
                  min(start_at) AS started,
                  min(answer_at) FILTER (WHERE disposition = 'ANSWERED') AS answered,
                  max(end_at) AS ended,
                  (array_agg(src ORDER BY (uniqueid = grp) DESC NULLS LAST, start_at, id))[1] AS src,
                  (array_agg(dst ORDER BY (uniqueid = grp) DESC NULLS LAST, start_at, id))[1] AS dst,
                  (array_agg(channel ORDER BY (uniqueid = grp) DESC NULLS LAST, start_at, id))[1] AS channel,
                  (array_agg(dstchannel ORDER BY disposition = 'ANSWERED' DESC, start_at, id))[1] AS answered_by,
                  array_agg(DISTINCT uniqueid) FILTER (WHERE uniqueid IS NOT NULL) AS uniqueids
             FROM (SELECT *, coalesce(nullif(linkedid, ''), uniqueid) AS grp FROM cdr_records
                    WHERE coalesce(nullif(linkedid, ''), uniqueid) = ANY($1)) r
            GROUP BY grp""",
        groups,
    )
    found = {
        r["grp"]: r["id"]
        for r in await conn.fetch(
            """SELECT DISTINCT ON (g) g AS grp, c.id
                 FROM unnest($1::text[]) g JOIN calls c ON c.call_uid = g OR c.linkedid = g
                ORDER BY g, (c.call_uid = g) DESC, c.id""",
            groups,
        )
    }
    lines = set(await conn.fetchval("SELECT coalesce(array_agg(number), '{}') FROM hotlines WHERE active"))
    matched = [a for a in aggs if a["grp"] in found]
    fresh = [a for a in aggs if a["grp"] not in found]
    if matched:
        await conn.execute(
            """UPDATE calls c
                  SET linkedid = coalesce(c.linkedid, m.grp),
                      answered_at = coalesce(c.answered_at, m.answered),
                      ended_at = coalesce(c.ended_at, m.ended),
                      talk_seconds = coalesce(c.talk_seconds,
                                              round(extract(epoch FROM m.ended - m.answered)::numeric, 3)),
                      answered_by = coalesce(c.answered_by, m.answered_by),
                      state = CASE WHEN c.state = ANY($6::text[]) AND m.ended IS NOT NULL
                                   THEN CASE WHEN m.answered IS NOT NULL THEN 'completed' ELSE 'abandoned' END
                                   ELSE c.state END,
                      updated_at = now()
                 FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[])
                      AS m(id, grp, answered, ended, answered_by)
                WHERE c.id = m.id""",
            [found[a["grp"]] for a in matched], [a["grp"] for a in matched], [a["answered"] for a in matched],
            [a["ended"] for a in matched], [a["answered_by"] for a in matched], list(_OPEN_STATES),
        )
    created = 0
    if fresh:
        numbers = [normalize(a["src"]) for a in fresh]
        created_rows = await conn.fetch(
            """INSERT INTO calls (call_uid, linkedid, channel, source, hotline_number, dialled, caller_number,
                                  caller_raw, caller_kind, started_at, answered_at, ended_at, talk_seconds,
                                  answered_by, state, disposition)
               SELECT f.grp, f.grp, f.channel, 'cdr', f.line, f.dst, f.caller, f.raw, f.kind, f.started,
                      f.answered, f.ended,
                      round(extract(epoch FROM f.ended - f.answered)::numeric, 3), f.answered_by,
                      CASE WHEN f.answered IS NOT NULL THEN 'completed' ELSE 'abandoned' END,
                      CASE WHEN f.answered IS NOT NULL THEN 'answered' ELSE 'no_answer' END
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                             $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[])
                      AS f(grp, channel, line, dst, caller, raw, kind, started, answered, ended, answered_by)
               ON CONFLICT (call_uid) DO NOTHING
               RETURNING id, call_uid""",
            [a["grp"] for a in fresh], [a["channel"] for a in fresh],
            [a["dst"] if a["dst"] in lines else default_line for a in fresh], [a["dst"] for a in fresh],
            [n.number for n in numbers], [a["src"] for a in fresh], [n.kind.value for n in numbers],
            [a["started"] for a in fresh], [a["answered"] for a in fresh], [a["ended"] for a in fresh],
            [a["answered_by"] for a in fresh],
        )
        created = len(created_rows)
    await conn.execute(
        """UPDATE cdr_records r SET call_id = c.id
             FROM calls c
            WHERE coalesce(nullif(r.linkedid, ''), r.uniqueid) = ANY($1)
              AND (c.call_uid = coalesce(nullif(r.linkedid, ''), r.uniqueid)
                   OR c.linkedid = coalesce(nullif(r.linkedid, ''), r.uniqueid))
              AND r.call_id IS DISTINCT FROM c.id""",
        groups,
    )
    # queue_log events that arrived before their call existed
    uids = [u for a in aggs for u in (a["uniqueids"] or [])] + groups
    pending = await conn.fetch(
        "SELECT * FROM queue_log_events WHERE call_id IS NULL AND callid = ANY($1) ORDER BY at, id", uids
    )
    await _apply_queue_events(conn, pending)
    return len(matched), created


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
    if parts[1] in ("", "NONE"):
        return None
    return {"row_hash": _hash(line.rstrip("\r\n")), "origin": origin, "at": at, "callid": parts[1],
            "queuename": parts[2] or None, "agent": parts[3] if parts[3] not in ("", "NONE") else None,
            "event": parts[4], "data": parts[5:]}


def _num(data: Sequence[str], index: int) -> Decimal | None:
    try:
        return Decimal(data[index]) if len(data) > index and data[index] else None
    except ArithmeticError:
        return None


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
    return ImportResult(len(inserted), len(rows) - len(inserted), bad, matched, 0)


async def _apply_queue_events(conn: asyncpg.Connection, events: Iterable[asyncpg.Record]) -> int:
    """Fill the matching calls from queue events (only empty columns; a final state only
    on a call still open). Returns how many events found their call."""
    matched = 0
    for ev in events:
        call_id = await conn.fetchval(
            """SELECT id FROM calls WHERE call_uid = $1 OR linkedid = $1
                ORDER BY (call_uid = $1) DESC, id LIMIT 1""", ev["callid"])
        if call_id is None:
            continue
        matched += 1
        data, kind = list(ev["data"] or []), ev["event"]
        if kind == "ENTERQUEUE":
            await conn.execute(
                """UPDATE calls SET queued_at = coalesce(queued_at, $2), queue = coalesce(queue, $3),
                          state = CASE WHEN state = 'ringing' THEN 'queued' ELSE state END, updated_at = now()
                    WHERE id = $1""", call_id, ev["at"], ev["queuename"])
        elif kind == "CONNECT":
            await conn.execute(
                """UPDATE calls SET answered_at = coalesce(answered_at, $2), wait_seconds = coalesce(wait_seconds, $3),
                          answered_by = coalesce(answered_by, $4),
                          state = CASE WHEN state IN ('ringing', 'queued') THEN 'answered' ELSE state END,
                          updated_at = now()
                    WHERE id = $1""", call_id, ev["at"], _num(data, 0), ev["agent"])
        elif kind in ("COMPLETECALLER", "COMPLETEAGENT"):
            await conn.execute(
                """UPDATE calls SET talk_seconds = coalesce(talk_seconds, $2), ended_at = coalesce(ended_at, $3),
                          state = CASE WHEN state = ANY($4::text[]) THEN 'completed' ELSE state END,
                          updated_at = now()
                    WHERE id = $1""", call_id, _num(data, 1), ev["at"], list(_OPEN_STATES))
        elif kind in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"):
            await conn.execute(
                """UPDATE calls SET wait_seconds = coalesce(wait_seconds, $2), ended_at = coalesce(ended_at, $3),
                          state = CASE WHEN state IN ('ringing', 'queued') THEN 'abandoned' ELSE state END,
                          disposition = coalesce(disposition, lower($4)), updated_at = now()
                    WHERE id = $1""", call_id, _num(data, 2), ev["at"], kind)
        await conn.execute("UPDATE queue_log_events SET call_id = $2 WHERE id = $1", ev["id"], call_id)
    return matched


# ---- lines and tables -------------------------------------------------------------

async def import_lines(
    conn: asyncpg.Connection, kind: str, lines: Sequence[str], *, origin: str, tz: ZoneInfo,
    default_line: str = "12345",
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
        return await import_cdr_rows(conn, parsed, default_line=default_line, bad=bad)
    return await import_queue_log_rows(conn, parsed, bad=bad)


async def import_cdr_table(
    source: asyncpg.Connection, target: asyncpg.Pool, *, table: str = "cdr", since: datetime | None = None,
    tz: ZoneInfo, default_line: str = "12345", chunk: int = 1000,
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
                total += await _import_chunk(target, batch, default_line)
                batch = []
        if batch:
            total += await _import_chunk(target, batch, default_line)
    return total


async def _import_chunk(pool: asyncpg.Pool, rows: list[dict[str, Any]], default_line: str) -> ImportResult:
    async with pool.acquire() as conn, conn.transaction():
        return await import_cdr_rows(conn, rows, default_line=default_line)
