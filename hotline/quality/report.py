"""The data-quality report of one source for one day.

Populations (all within the local day ``[day 00:00, day+1 00:00)``):

* *received*: every record received that day — receipts (accepted, updated,
  duplicate) plus records quarantined that day;
* *records*: the stored records (current version) last received that day — the
  base of completeness, code validity and state-machine checks;
* *timeliness*: receipts that changed the store (accepted or updated), lag =
  receipt time − the record's latest event time.

Every figure states its numerator and denominator.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from hotline.ingest.cdr import format_offset
from hotline.ingest.schema import QUALITY_MANDATORY

#: (name, SQL condition on subcenter_tickets t) — a ticket whose timestamps contradict its lifecycle
TICKET_VIOLATIONS: tuple[tuple[str, str], ...] = (
    ("dispatched_before_created", "t.dispatched_at < t.created_at"),
    ("signed_before_dispatched", "t.signed_at IS NOT NULL AND (t.dispatched_at IS NULL OR t.signed_at < t.dispatched_at)"),
    ("replied_before_signed", "t.replied_at IS NOT NULL AND (t.signed_at IS NULL OR t.replied_at < t.signed_at)"),
    ("closed_before_dispatched", "t.closed_at < t.dispatched_at"),
    ("closed_before_created", "t.closed_at < t.created_at"),
    ("closed_without_closing_time", "t.state = 'closed' AND t.closed_at IS NULL"),
    ("closing_time_on_open_ticket", "t.state NOT IN ('closed', 'merged', 'direct') AND t.closed_at IS NOT NULL"),
    ("in_handling_without_dispatch",
     "t.state IN ('dispatched', 'signed', 'handling', 'returned', 'extended', 'replied', 'reviewed', 'callback') "
     "AND t.dispatched_at IS NULL"),
)
CALL_VIOLATIONS: tuple[tuple[str, str], ...] = (
    ("answered_before_started", "t.answered_at < t.started_at"),
    ("ended_before_started", "t.ended_at < t.started_at"),
    ("ended_before_answered", "t.ended_at < t.answered_at"),
    ("answered_without_answer_time", "t.state IN ('answered', 'completed') AND t.answered_at IS NULL"),
    ("abandoned_but_answered", "t.state = 'abandoned' AND t.answered_at IS NOT NULL"),
)
_TABLE = {"calls": "subcenter_calls", "tickets": "subcenter_tickets"}


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tz)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def build_report(
    conn: asyncpg.Connection | asyncpg.Pool, source: str, day: date, *, tz: ZoneInfo,
    late_threshold: int = 300, regions: tuple[str, ...] = (), examples: int = 5, unlinked_minutes: int = 10,
) -> dict[str, Any]:
    start, end = day_bounds(day, tz)
    src = await conn.fetchrow("SELECT code, name, hotline_numbers FROM ingest_sources WHERE code = $1", source)
    report: dict[str, Any] = {
        "source": source, "source_name": src["name"] if src else None, "day": day.isoformat(),
        "time_zone": str(tz), "generated_at": datetime.now(tz).isoformat(), "late_threshold_seconds": late_threshold,
        "kinds": {},
    }
    for kind in ("calls", "tickets"):
        report["kinds"][kind] = await _kind_report(conn, source, kind, start, end, late_threshold, regions, examples)
    report["replays"] = await conn.fetchval(
        "SELECT count(*) FROM ingest_replays WHERE source = $1 AND at >= $2 AND at < $3", source, start, end)
    report["cross_check"] = await _cross_check(conn, source, list(src["hotline_numbers"]) if src else [],
                                               start, end, examples)
    report["asterisk"] = await asterisk_records(conn, start, end, examples, unlinked_minutes)
    return report


async def asterisk_records(conn: Any, start: datetime, end: datetime, examples: int = 5,
                           unlinked_minutes: int = 10) -> dict[str, Any]:
    """The PBX's own records imported that day (the same section in every source's
    report): CDR legs no call claimed after ``unlinked_minutes`` (no tag and no AGI
    record: newcdrcolumns off, or a call the dialplan did not tag), calls only the CDR
    recorded, and CDR starts off the AGI's by more than ``[ingest] cdr_skew_tolerance``
    (``cdr_timezone`` wrong or the PBX clock off), with the offset seen most often."""
    unlinked = await conn.fetchrow(
        """SELECT count(*) AS n, (array_agg(uniqueid ORDER BY id))[1:$4] AS ex FROM cdr_records
            WHERE call_id IS NULL AND imported_at >= $1 AND imported_at < $2
              AND imported_at < now() - make_interval(mins => $3)""", start, end, unlinked_minutes, examples)
    skew = await conn.fetchrow(
        """SELECT count(*) AS n, mode() WITHIN GROUP (ORDER BY clock_skew_seconds) AS typical,
                  (array_agg(DISTINCT c.call_uid))[1:$3] AS ex
             FROM cdr_records r LEFT JOIN calls c ON c.id = r.call_id
            WHERE r.clock_skew_seconds IS NOT NULL AND r.imported_at >= $1 AND r.imported_at < $2""",
        start, end, examples)
    from_cdr = await conn.fetchval(
        """SELECT count(DISTINCT r.call_id) FROM cdr_records r JOIN calls c ON c.id = r.call_id
            WHERE r.imported_at >= $1 AND r.imported_at < $2
              AND c.decisions @> '[{"step": "cdr", "outcome": "recorded_from_cdr"}]'""", start, end)
    typical = skew["typical"]
    return {
        "unlinked_legs": unlinked["n"], "unlinked_examples": list(unlinked["ex"] or []),
        "calls_recorded_from_cdr": from_cdr,
        "clock_skewed_rows": skew["n"], "clock_skew_seconds": typical,
        "clock_skew": None if typical is None else format_offset(typical),
        "clock_skew_examples": [e for e in (skew["ex"] or []) if e],
    }



async def _kind_report(conn: Any, source: str, kind: str, start: datetime, end: datetime, late: int,
                       regions: tuple[str, ...], examples: int) -> dict[str, Any]:
    table = _TABLE[kind]
    receipts = {r["outcome"]: r["n"] for r in await conn.fetch(
        """SELECT outcome, count(*) AS n FROM ingest_receipts
            WHERE source = $1 AND kind = $2 AND received_at >= $3 AND received_at < $4 GROUP BY outcome""",
        source, kind, start, end)}
    reasons = {r["code"]: r["n"] for r in await conn.fetch(
        """SELECT reason ->> 'code' AS code, count(*) AS n
             FROM ingest_quarantine q, jsonb_array_elements(q.reasons) reason
            WHERE q.source = $1 AND q.kind = $2 AND q.received_at >= $3 AND q.received_at < $4
            GROUP BY 1 ORDER BY 1""", source, kind, start, end)}
    rejected = await conn.fetchval(
        """SELECT count(*) FROM ingest_quarantine
            WHERE source = $1 AND kind = $2 AND received_at >= $3 AND received_at < $4""", source, kind, start, end)
    line_rejected = await conn.fetchval(
        """SELECT count(*) FROM ingest_quarantine q
            WHERE q.source = $1 AND q.kind = $2 AND q.received_at >= $3 AND q.received_at < $4
              AND EXISTS (SELECT 1 FROM jsonb_array_elements(q.reasons) r WHERE r ->> 'field' = 'hotline_number')""",
        source, kind, start, end)
    received = sum(receipts.values()) + rejected
    duplicates = receipts.get("duplicate", 0)
    volume = {
        "received": received, "accepted": receipts.get("accepted", 0), "updated": receipts.get("updated", 0),
        "duplicate": duplicates, "rejected": rejected, "rejected_by_reason": reasons,
        "duplicate_share": _share(duplicates, received), "rejected_share": _share(rejected, received),
    }
    population = f"FROM {table} t WHERE t.source = $1 AND t.received_at >= $2 AND t.received_at < $3"
    records = await conn.fetchval(f"SELECT count(*) {population}", source, start, end)  # noqa: S608

    # completeness of the fields the city expects filled
    fields = QUALITY_MANDATORY[kind]
    missing_sql = ", ".join(
        f"count(*) FILTER (WHERE t.{f} IS NULL OR t.{f}::text = '') AS {f}" for f in fields)
    all_sql = " AND ".join(f"(t.{f} IS NOT NULL AND t.{f}::text <> '')" for f in fields)
    row = await conn.fetchrow(
        f"SELECT {missing_sql}, count(*) FILTER (WHERE {all_sql}) AS complete {population}",  # noqa: S608
        source, start, end)
    completeness = {
        "records": records, "complete_records": row["complete"], "complete_share": _share(row["complete"], records),
        "missing": {f: row[f] for f in fields},
    }

    # validity of codes: line (refused at ingest), unit, category, region
    validity: dict[str, Any] = {
        "line": {"checked": records + line_rejected, "invalid": line_rejected,
                 "valid_share": _share(records, records + line_rejected)},
    }
    code_checks = [("unit", "unit_code", "SELECT code FROM units")]
    if kind == "tickets":
        code_checks.append(("category", "category", "SELECT code FROM ticket_categories"))
    for name, column, table_sql in code_checks:
        validity[name] = await _code_validity(conn, population, column, table_sql, None, source, start, end, examples)
    validity["region"] = await _code_validity(conn, population, "region", None, list(regions), source, start, end,
                                              examples)

    # timeliness
    t = await conn.fetchrow(
        """SELECT count(*) AS n,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS median,
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY lag) AS p95,
                  count(*) FILTER (WHERE lag > $5) AS late,
                  count(*) FILTER (WHERE lag < -60) AS future
             FROM (SELECT extract(epoch FROM received_at - event_at) AS lag FROM ingest_receipts
                    WHERE source = $1 AND kind = $2 AND received_at >= $3 AND received_at < $4
                      AND outcome IN ('accepted', 'updated') AND event_at IS NOT NULL) x""",
        source, kind, start, end, late)
    timeliness = {
        "measured": t["n"], "median_seconds": _round(t["median"]), "p95_seconds": _round(t["p95"]),
        "late": t["late"], "late_share": _share(t["late"], t["n"]), "future_events": t["future"],
    }

    # sequence gaps (the source's own send sequence) and version gaps (per record)
    seq_rows = await conn.fetch(
        """WITH day AS (SELECT seq FROM ingest_receipts
                         WHERE source = $1 AND kind = $2 AND received_at >= $3 AND received_at < $4
                           AND seq IS NOT NULL
                        UNION  -- a refused record was still sent: its number is not a gap
                        SELECT (record ->> 'seq')::bigint FROM ingest_quarantine
                         WHERE source = $1 AND kind = $2 AND received_at >= $3 AND received_at < $4
                           AND record ->> 'seq' ~ '^[0-9]{1,18}$'),
                prev AS (SELECT max(seq) AS seq FROM ingest_receipts
                          WHERE source = $1 AND kind = $2 AND received_at < $3 AND seq IS NOT NULL),
                ordered AS (SELECT seq, lag(seq) OVER (ORDER BY seq) AS before FROM day)
           SELECT coalesce(o.before, p.seq) + 1 AS gap_from, o.seq - 1 AS gap_to
             FROM ordered o, prev p
            WHERE o.seq - coalesce(o.before, p.seq, o.seq - 1) > 1
            ORDER BY o.seq""",
        source, kind, start, end)
    version_gaps = await conn.fetch(
        """WITH touched AS (SELECT DISTINCT source_id FROM ingest_receipts
                             WHERE source = $1 AND kind = $2 AND received_at >= $3 AND received_at < $4),
                versions AS (SELECT r.source_id, min(r.version) AS lo, max(r.version) AS hi,
                                    count(DISTINCT r.version) AS n
                               FROM ingest_receipts r JOIN touched USING (source_id)
                              WHERE r.source = $1 AND r.kind = $2 AND r.received_at < $4
                              GROUP BY r.source_id)
           SELECT source_id, hi - n AS missing FROM versions WHERE hi - n > 0 ORDER BY source_id""",
        source, kind, start, end)
    sequence = {
        "gaps": len(seq_rows), "missing": sum(r["gap_to"] - r["gap_from"] + 1 for r in seq_rows),
        "ranges": [[r["gap_from"], r["gap_to"]] for r in seq_rows[:20]],
        "records_with_version_gaps": len(version_gaps),
        "version_gap_examples": [r["source_id"] for r in version_gaps[:examples]],
    }

    # lifecycle contradictions
    violations = {}
    for name, condition in (TICKET_VIOLATIONS if kind == "tickets" else CALL_VIOLATIONS):
        rows = await conn.fetch(
            f"SELECT t.source_id {population} AND ({condition}) ORDER BY t.source_id",  # noqa: S608
            source, start, end)
        violations[name] = {"count": len(rows), "examples": [r["source_id"] for r in rows[:examples]]}
    violating = await conn.fetchval(
        f"SELECT count(*) {population} AND ("  # noqa: S608
        + " OR ".join(f"coalesce({c}, false)" for _, c in (TICKET_VIOLATIONS if kind == "tickets" else CALL_VIOLATIONS))
        + ")", source, start, end)
    return {
        "volume": volume, "completeness": completeness, "validity": validity, "timeliness": timeliness,
        "sequence": sequence,
        "state_machine": {"records": records, "violating_records": violating,
                          "violating_share": _share(violating, records), "violations": violations},
    }


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


async def _code_validity(conn: Any, population: str, column: str, table_sql: str | None, allowed: list[str] | None,
                         source: str, start: datetime, end: datetime, examples: int) -> dict[str, Any]:
    if table_sql is not None:
        known = f"t.{column} IN ({table_sql})"
        args: list[Any] = [source, start, end]
    else:
        known = f"t.{column} = ANY($4::text[])"
        args = [source, start, end, allowed or []]
    row = await conn.fetchrow(
        f"""SELECT count(*) FILTER (WHERE t.{column} IS NOT NULL AND t.{column} <> '') AS checked,
                   count(*) FILTER (WHERE t.{column} IS NOT NULL AND t.{column} <> '' AND NOT ({known})) AS invalid,
                   (array_agg(DISTINCT t.{column}) FILTER (WHERE t.{column} IS NOT NULL AND t.{column} <> ''
                                                           AND NOT ({known})))[1:{int(examples)}] AS bad_values
            {population}""",  # noqa: S608 (identifiers from constants)
        *args)
    return {"checked": row["checked"], "invalid": row["invalid"],
            "valid_share": _share(row["checked"] - row["invalid"], row["checked"]),
            "invalid_values": list(row["bad_values"] or [])}


async def _cross_check(conn: Any, source: str, lines: list[str], start: datetime, end: datetime,
                       examples: int) -> dict[str, Any]:
    """Calls 12345 transferred to this sub-centre (answered there, by our transfer
    records) against the sub-centre's own call records that name our call id."""
    ours = await conn.fetch(
        """SELECT DISTINCT c.call_uid FROM transfer_attempts a JOIN calls c ON c.id = a.call_id
            WHERE a.kind = 'subcenter' AND a.outcome = 'answered'
              AND (cardinality($1::text[]) = 0 OR a.hotline_number = ANY($1))
              AND a.created_at >= $2 AND a.created_at < $3""",
        lines, start, end)
    theirs = await conn.fetch(
        """SELECT DISTINCT transfer_call_uid AS call_uid FROM subcenter_calls
            WHERE source = $1 AND transfer_call_uid IS NOT NULL AND started_at >= $2 AND started_at < $3""",
        source, start, end)
    our_set = {r["call_uid"] for r in ours}
    their_set = {r["call_uid"] for r in theirs}
    known_to_us = {r["call_uid"] for r in await conn.fetch(
        "SELECT call_uid FROM calls WHERE call_uid = ANY($1)", sorted(their_set - our_set))}
    missing = sorted(our_set - their_set)
    unknown = sorted(their_set - our_set - known_to_us)
    not_transferred = sorted((their_set - our_set) & known_to_us)
    return {
        "our_transfers": len(our_set), "subcenter_reported": len(their_set), "matched": len(our_set & their_set),
        "difference": len(their_set) - len(our_set),
        "missing_at_subcenter": len(missing), "missing_examples": missing[:examples],
        "unknown_to_us": len(unknown), "unknown_examples": unknown[:examples],
        "not_a_transfer_here": len(not_transferred), "not_a_transfer_examples": not_transferred[:examples],
    }


async def store_report(conn: asyncpg.Connection | asyncpg.Pool, report: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO quality_reports (source, day, report) VALUES ($1, $2, $3)
           ON CONFLICT (source, day) DO UPDATE SET report = EXCLUDED.report, generated_at = now()""",
        report["source"], date.fromisoformat(report["day"]), report,
    )


def flatten(report: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """``(kind, section, metric, value)`` rows for CSV."""
    rows: list[tuple[str, str, str, Any]] = []

    def walk(kind: str, section: str, prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(kind, section, f"{prefix}.{key}" if prefix else key, inner)
        elif isinstance(value, list):
            rows.append((kind, section, prefix, " ".join(str(v) for v in value)))
        else:
            rows.append((kind, section, prefix, value))

    for kind, sections in report["kinds"].items():
        for section, value in sections.items():
            walk(kind, section, "", value)
    walk("", "replays", "replays", report["replays"])
    for key, value in report["cross_check"].items():
        walk("calls", "cross_check", key, value)
    for key, value in (report.get("asterisk") or {}).items():  # reports stored before it had the section
        walk("calls", "asterisk", key, value)
    return rows


def to_csv(reports: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["source", "day", "kind", "section", "metric", "value"])
    for report in reports:
        for kind, section, metric, value in flatten(report):
            writer.writerow([report["source"], report["day"], kind, section, metric, "" if value is None else value])
    return out.getvalue()
