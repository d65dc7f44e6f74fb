"""The SLA scan: clocks whose next alert mark has passed, by the ``next_check_at``
index, fire their levels (warning < 100 %, overdue = 100 %, escalation > 100 %)
exactly once: rows are taken ``FOR UPDATE SKIP LOCKED`` and alerts are unique per
(clock, level), so two scanners never fire one level twice. Overdue and
escalation are also appended to the ticket's history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from hotline.events import Topic, publish

_FIRE = """
WITH due AS MATERIALIZED (
    SELECT id, ticket_id, leg_id, stage, deadline, levels, marks, fired FROM sla_clocks
     WHERE next_check_at <= $1
     ORDER BY next_check_at LIMIT $2
     FOR UPDATE SKIP LOCKED
), lv AS MATERIALIZED (
    SELECT d.id AS clock_id, d.ticket_id, d.leg_id, d.stage, d.deadline, i AS idx, d.levels[i] AS pct,
           d.marks
      FROM due d
     CROSS JOIN LATERAL generate_subscripts(d.marks, 1) AS i
     WHERE i > d.fired AND d.marks[i] IS NOT NULL AND d.marks[i] <= $1
), m AS MATERIALIZED (
    SELECT clock_id, marks, max(idx) AS top, max(pct) AS maxpct
      FROM lv GROUP BY clock_id, marks
), upd AS (
    UPDATE sla_clocks c
       SET fired = m.top, next_check_at = m.marks[m.top + 1],
           overdue = c.overdue OR m.maxpct >= 100, updated_at = now()
      FROM m
     WHERE c.id = m.clock_id
    RETURNING c.id
), ins AS (
    INSERT INTO sla_alerts (clock_id, ticket_id, stage, unit_code, level_pct, kind, deadline, at)
    SELECT lv.clock_id, lv.ticket_id, lv.stage, coalesce(l.unit_code, t.lead_unit_code), lv.pct,
           CASE WHEN lv.pct < 100 THEN 'warning' WHEN lv.pct = 100 THEN 'overdue' ELSE 'escalation' END,
           lv.deadline, $1
      FROM lv
      JOIN tickets t ON t.id = lv.ticket_id
      LEFT JOIN ticket_legs l ON l.id = lv.leg_id
    ON CONFLICT (clock_id, level_pct) DO NOTHING
    RETURNING id, clock_id, ticket_id, stage, unit_code, level_pct, kind
), hist AS (
    INSERT INTO ticket_events (ticket_id, at, actor_name, action, from_state, to_state, note, detail)
    SELECT ins.ticket_id, $1, '系统', CASE ins.kind WHEN 'overdue' THEN 'overdue' ELSE 'escalate' END,
           t.state, t.state,
           CASE ins.kind WHEN 'overdue' THEN '超期：' ELSE '超期升级至班长：' END
             || CASE ins.stage WHEN 'sign' THEN '签收' WHEN 'handle' THEN '办理'
                               WHEN 'reply' THEN '回复审核' WHEN 'supervise' THEN '督办回复' ELSE '回访' END,
           jsonb_build_object('stage', ins.stage, 'level_pct', ins.level_pct, 'unit_code', ins.unit_code,
                              'alert_id', ins.id)
      FROM ins JOIN tickets t ON t.id = ins.ticket_id
     WHERE ins.kind <> 'warning'
    RETURNING id
)
SELECT (SELECT count(*) FROM due) AS due, (SELECT count(*) FROM upd) AS updated,
       (SELECT coalesce(jsonb_agg(to_jsonb(ins)), '[]'::jsonb) FROM ins) AS alerts,
       (SELECT count(*) FROM hist) AS history
"""

#: beyond this many alerts in one round, one summary event is published instead
MAX_EVENTS_PER_ROUND = 200


@dataclass(slots=True)
class ScanResult:
    due: int = 0
    alerts: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    rounds: int = 0

    def to_json(self) -> dict[str, object]:
        return {"due": self.due, "alerts": self.alerts, "by_kind": self.by_kind, "rounds": self.rounds}


async def scan(pool: asyncpg.Pool, *, now: datetime | None = None, batch: int = 1000,
               max_rounds: int = 1000) -> ScanResult:
    """Fire every level due at ``now`` (default: the database's now), in batches."""
    result = ScanResult()
    async with pool.acquire() as conn:
        if now is None:
            now = await conn.fetchval("SELECT now()")
        for _ in range(max_rounds):
            async with conn.transaction():
                # a round touches at most `batch` clocks, found by index: the planner's row
                # estimates for the CTEs are far too high and make it hash-join whole tables
                await conn.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
                row = await conn.fetchrow(_FIRE, now, batch)
                assert row is not None
                alerts = row["alerts"]
                if len(alerts) <= MAX_EVENTS_PER_ROUND:
                    for a in alerts:
                        await publish(conn, Topic.SLA_ALERT, {"alert_id": a["id"], "ticket_id": a["ticket_id"],
                                                          "kind": a["kind"], "stage": a["stage"],
                                                          "unit_code": a["unit_code"], "level_pct": a["level_pct"]})
                elif alerts:
                    await publish(conn, Topic.SLA_ALERTS, {"count": len(alerts)})
            result.rounds += 1
            result.due += row["due"]
            result.alerts += len(alerts)
            for a in alerts:
                result.by_kind[a["kind"]] = result.by_kind.get(a["kind"], 0) + 1
            if row["due"] < batch:
                break
    return result
