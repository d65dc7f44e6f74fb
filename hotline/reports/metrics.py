"""The figures, with their definitions and denominators stated once.

Calls (GB/T 33358-2016; shared/reference/norms.md):
  offered            calls that reached the queue (``queued_at`` set)
  answered           offered calls an agent answered (``answered_at`` set)
  abandoned          offered calls the caller hung up on before an answer (state ``abandoned``)
  short_abandoned    abandoned after waiting under 5 s; counted in abandoned AND reported apart
  answered_within_15s  answered with a wait of at most 15 s
  connection_rate    answered / offered
  service_level_15s  answered_within_15s / offered  (denominator: offered, not answered)
  asa_seconds        mean wait of answered calls
  aht_seconds        mean (talk + after-call work) of answered calls
Calls are in the period by ``started_at``; ``unit`` is the unit owning the line
dialled; per agent only answered-call figures are attributable (offered and
abandoned are null).

Tickets (cohort: tickets created in the period, by ``created_at``):
  created, closed_directly, direct_answer_rate = closed_directly / created,
  dispatched, returned, extended, reopened (count of tickets with ≥ 1),
  merged, closed, callback_owed (reply approved), called_back,
  callback_rate = called_back / callback_owed, satisfaction_1..5, rated,
  satisfied_rate = (5 + 4 + 3) / rated.
SLA (clocks started in the period on a unit's leg):
  sign_met / sign_decided: responded (signed or returned) by the deadline /
  sign clocks stopped (met + missed) → signed_on_time_rate;
  handle_met / handle_decided → completed_on_time_rate; *_running_overdue are
  clocks still running past their deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from hotline.errors import ValidationError

GROUPS = ("total", "line", "unit", "agent", "day", "week", "month")
SHORT_ABANDON_SECONDS = 5
SERVICE_LEVEL_SECONDS = 15


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime  # exclusive

    @classmethod
    def parse(cls, date_from: str | None, date_to: str | None, tz: ZoneInfo, *,
              today: date | None = None) -> Period:
        """Local dates, ``to`` inclusive; default: the current month up to today."""
        today = today or datetime.now(tz).date()
        try:
            first = date.fromisoformat(date_from) if date_from else today.replace(day=1)
            last = date.fromisoformat(date_to) if date_to else today
        except ValueError:
            bad, name = (date_from, "from") if not _is_date(date_from) else (date_to, "to")
            raise ValidationError(f"参数 {name} 必须是日期（如 2026-11-30），收到 {bad!r}", field=name, value=bad,
                                  code="invalid_date") from None
        if last < first:
            raise ValidationError(f"结束日期 to {last} 早于开始日期 from {first}", field="to", value=str(last),
                                  code="out_of_range")
        if (last - first).days > 366 * 3:
            raise ValidationError(f"报表最多跨三年，收到 {first} 至 {last}", field="to", value=str(last),
                                  code="out_of_range")
        return cls(datetime.combine(first, time(0), tz), datetime.combine(last + timedelta(days=1), time(0), tz))


def _is_date(value: str | None) -> bool:
    try:
        return not value or bool(date.fromisoformat(value))
    except ValueError:
        return False


def _group(group: str) -> None:
    if group not in GROUPS:
        raise ValidationError(f"参数 group 必须是 {'、'.join(GROUPS)} 之一，收到 {group!r}", field="group",
                              value=group, code="invalid_choice")


def _bucket(column: str, group: str, tz: str) -> str:
    # column and tz come from this module's constants and the settings, never from a request
    if group == "day":  # a cast is much cheaper than date_trunc over millions of rows
        return f"({column} AT TIME ZONE '{tz}')::date"
    trunc = {"week": "week", "month": "month"}[group]
    return f"date_trunc('{trunc}', {column} AT TIME ZONE '{tz}')::date"


LABELS = {
    "total": "'全部'",
    "line": "(SELECT name FROM hotlines WHERE number = g.key)",
    "unit": "(SELECT name FROM units WHERE code = g.key)",
    "agent": "(SELECT display_name FROM users WHERE id = g.key::bigint)",
}


def _keyed(key: str, group: str) -> tuple[str, str]:
    """``(key expression for the output, label expression)`` over the aggregated ``g``."""
    if group in LABELS:
        return "g.key", LABELS[group]
    return "to_char(g.key, 'YYYY-MM-DD')", "to_char(g.key, 'YYYY-MM-DD')"


def _ratio(num: Any, den: Any) -> float | None:
    return round(float(num) / float(den), 4) if den else None


CALL_KEYS = {
    "total": "'all'",
    "line": "c.hotline_number",
    "unit": "(SELECT unit_code FROM hotlines h WHERE h.number = c.hotline_number)",
    "agent": "c.agent_id::text",
}


async def call_metrics(conn: asyncpg.Connection | asyncpg.Pool, period: Period, group: str, *,
                       tz: str = "Asia/Shanghai", hotline_number: str | None = None) -> list[dict[str, Any]]:
    _group(group)
    key = CALL_KEYS.get(group) or _bucket("c.started_at", group, tz)
    out_key, label = _keyed(key, group)
    agent_filter = "AND c.answered_at IS NOT NULL" if group == "agent" else ""
    sql = f"""
        WITH x AS (
            SELECT {key} AS key, c.answered_at IS NOT NULL AS answered, c.state,
                   coalesce(c.wait_seconds,
                            extract(epoch FROM coalesce(c.answered_at, c.ended_at) - c.queued_at)) AS wait,
                   coalesce(c.talk_seconds, extract(epoch FROM c.ended_at - c.answered_at)) AS talk,
                   c.acw_seconds AS acw
              FROM calls c
             WHERE c.started_at >= $1 AND c.started_at < $2 AND c.queued_at IS NOT NULL
               AND ($3::text IS NULL OR c.hotline_number = $3) {agent_filter}
        ), g AS (
            SELECT key,
                   count(*) AS offered,
                   count(*) FILTER (WHERE answered) AS answered,
                   count(*) FILTER (WHERE NOT answered AND state = 'abandoned') AS abandoned,
                   count(*) FILTER (WHERE NOT answered AND state = 'abandoned'
                                      AND wait < {SHORT_ABANDON_SECONDS}) AS short_abandoned,
                   count(*) FILTER (WHERE answered AND wait <= {SERVICE_LEVEL_SECONDS}) AS answered_within_15s,
                   avg(wait) FILTER (WHERE answered) AS asa_seconds,
                   avg(talk + coalesce(acw, 0)) FILTER (WHERE answered) AS aht_seconds
              FROM x GROUP BY key
        )
        SELECT {out_key} AS key, {label} AS label, g.offered, g.answered, g.abandoned, g.short_abandoned,
               g.answered_within_15s, g.asa_seconds, g.aht_seconds
          FROM g ORDER BY g.key"""  # noqa: S608
    rows = await conn.fetch(sql, period.start, period.end, hotline_number)
    out = []
    for r in rows:
        item = dict(r)
        for k in ("asa_seconds", "aht_seconds"):
            item[k] = round(float(item[k]), 2) if item[k] is not None else None
        item["connection_rate"] = _ratio(item["answered"], item["offered"])
        item["service_level_15s"] = _ratio(item["answered_within_15s"], item["offered"])
        item["service_level_denominator"] = "offered"
        if group == "agent":  # only answered-call figures are an agent's
            item.update(offered=None, abandoned=None, short_abandoned=None, connection_rate=None,
                        service_level_15s=None, service_level_denominator=None)
        out.append(item)
    return out


TICKET_KEYS = {
    "total": "'all'",
    "line": "t.hotline_number",
    "unit": "t.lead_unit_code",
    "agent": "t.created_by::text",
}
CLOCK_KEYS = {
    "total": "'all'",
    "line": "k.hotline_number",
    "unit": "k.unit_code",
    "agent": "(SELECT created_by::text FROM tickets WHERE id = k.ticket_id)",
}


async def ticket_metrics(conn: asyncpg.Connection | asyncpg.Pool, period: Period, group: str, *,
                         tz: str = "Asia/Shanghai", hotline_number: str | None = None,
                         now: datetime | None = None) -> list[dict[str, Any]]:
    _group(group)
    if group in TICKET_KEYS:
        key, clock_key = TICKET_KEYS[group], CLOCK_KEYS[group]
    else:
        key, clock_key = _bucket("t.created_at", group, tz), _bucket("k.started_at", group, tz)
    out_key, label = _keyed(key, group)
    tickets_sql = f"""
        WITH g AS (
        SELECT {key} AS key,
               count(*) AS created,
               count(*) FILTER (WHERE t.close_kind = 'direct') AS closed_directly,
               count(*) FILTER (WHERE t.dispatched_at IS NOT NULL) AS dispatched,
               count(*) FILTER (WHERE t.returned_count > 0) AS returned,
               count(*) FILTER (WHERE t.extended_count > 0) AS extended,
               count(*) FILTER (WHERE t.reopen_count > 0) AS reopened,
               count(*) FILTER (WHERE t.state = 'merged') AS merged,
               count(*) FILTER (WHERE t.state = 'closed') AS closed,
               count(*) FILTER (WHERE t.callback_due_at IS NOT NULL) AS callback_owed,
               count(*) FILTER (WHERE t.callback_at IS NOT NULL) AS called_back,
               count(*) FILTER (WHERE t.satisfaction = 5 AND t.state <> 'merged') AS satisfaction_5,
               count(*) FILTER (WHERE t.satisfaction = 4 AND t.state <> 'merged') AS satisfaction_4,
               count(*) FILTER (WHERE t.satisfaction = 3 AND t.state <> 'merged') AS satisfaction_3,
               count(*) FILTER (WHERE t.satisfaction = 2 AND t.state <> 'merged') AS satisfaction_2,
               count(*) FILTER (WHERE t.satisfaction = 1 AND t.state <> 'merged') AS satisfaction_1
          FROM tickets t
         WHERE t.created_at >= $1 AND t.created_at < $2 AND ($3::text IS NULL OR t.hotline_number = $3)
         GROUP BY 1)
        SELECT {out_key} AS key, {label} AS label, g.* FROM g"""  # noqa: S608
    clocks_sql = f"""
        WITH g AS (
        SELECT {clock_key} AS key,
               count(*) FILTER (WHERE k.stage = 'sign' AND k.outcome = 'met') AS sign_met,
               count(*) FILTER (WHERE k.stage = 'sign' AND k.outcome IN ('met', 'missed')) AS sign_decided,
               count(*) FILTER (WHERE k.stage = 'sign' AND k.stopped_at IS NULL AND k.deadline < $4)
                   AS sign_running_overdue,
               count(*) FILTER (WHERE k.stage = 'handle' AND k.outcome = 'met') AS handle_met,
               count(*) FILTER (WHERE k.stage = 'handle' AND k.outcome IN ('met', 'missed')) AS handle_decided,
               count(*) FILTER (WHERE k.stage = 'handle' AND k.stopped_at IS NULL AND k.deadline < $4)
                   AS handle_running_overdue
          FROM sla_clocks k
         WHERE k.stage IN ('sign', 'handle') AND k.leg_id IS NOT NULL
           AND k.started_at >= $1 AND k.started_at < $2 AND ($3::text IS NULL OR k.hotline_number = $3)
         GROUP BY 1)
        SELECT {out_key} AS key, g.sign_met, g.sign_decided, g.sign_running_overdue, g.handle_met,
               g.handle_decided, g.handle_running_overdue FROM g"""  # noqa: S608
    trows = await conn.fetch(tickets_sql, period.start, period.end, hotline_number)
    crows = await conn.fetch(clocks_sql, period.start, period.end, hotline_number, now or datetime.now(period.start.tzinfo))
    clocks_by_key = {r["key"]: dict(r) for r in crows}
    zero_clock = {k: 0 for k in ("sign_met", "sign_decided", "sign_running_overdue", "handle_met",
                                 "handle_decided", "handle_running_overdue")}
    out = []
    keys = sorted({r["key"] for r in trows} | set(clocks_by_key), key=lambda k: (k is None, k or ""))
    by_key = {}
    for r in trows:
        item = dict(r)
        item.pop("key", None)
        by_key[r["key"]] = {"key": r["key"], "label": r["label"], **{k: v for k, v in item.items() if k != "label"}}
    for k in keys:
        item = by_key.get(k) or {"key": k, "label": None, **{f: 0 for f in (
            "created", "closed_directly", "dispatched", "returned", "extended", "reopened", "merged", "closed",
            "callback_owed", "called_back", "satisfaction_5", "satisfaction_4", "satisfaction_3",
            "satisfaction_2", "satisfaction_1")}}
        c = clocks_by_key.get(k, zero_clock)
        item.update({f: c[f] for f in zero_clock})
        rated = sum(item[f"satisfaction_{i}"] for i in range(1, 6))
        item.update(
            direct_answer_rate=_ratio(item["closed_directly"], item["created"]),
            signed_on_time_rate=_ratio(item["sign_met"], item["sign_decided"]),
            completed_on_time_rate=_ratio(item["handle_met"], item["handle_decided"]),
            callback_rate=_ratio(item["called_back"], item["callback_owed"]),
            rated=rated,
            satisfied_rate=_ratio(item["satisfaction_5"] + item["satisfaction_4"] + item["satisfaction_3"], rated),
        )
        item.pop("key_sort", None)
        out.append(item)
    return out
