"""The three rates (三率) every 12345 city reports, per handling unit and period,
defined once here (docs/RATES.md says the same in words):

response_rate (响应率, on-time signing)
    numerator:   sign clocks (签收时限) of the unit's legs, started in the period, that
                 stopped by their deadline (signed or returned in time: outcome ``met``)
    denominator: those clocks decided (``met`` + ``missed``) plus those still running
                 past their deadline at ``now`` (a unit that never signs is late, not absent)
resolution_rate (解决率)
    cohort:      tickets called back (回访) in the period (``callback_at``; the latest
                 callback counts), not merged, lead unit = the unit, with a recorded
                 resolution
    numerator:   resolved (解决)
    denominator: resolved + partly resolved (部分解决) + unresolved (未解决)
satisfaction_rate (满意率)
    cohort:      the same tickets, with a recorded satisfaction
    numerator:   非常满意 + 满意 + 基本满意 (5, 4, 3)
    denominator: all five levels

With ``exemptions=True`` (the assessment's figures) a ticket exempted for the unit
(免责, see hotline.assessment) leaves all three of that unit's counts. A rate
without a denominator is None (no data), never 0.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from hotline.errors import ValidationError
from hotline.reports.metrics import Period

RESOLUTIONS = ("resolved", "partly", "unresolved")
RESOLUTION_ZH = {"resolved": "解决", "partly": "部分解决", "unresolved": "未解决"}
RATE_GROUPS = ("unit", "total")

DEFINITIONS = {
    "response_rate": "响应率（按时签收率）= 统计期内开始计时的签收时限中按时签收或按时退回的数量 /"
                     "（已判定的签收时限 + 至统计时仍未签收且已超时的签收时限）",
    "resolution_rate": "解决率 = 统计期内回访且记录了解决情况的工单中“解决”的数量 /（解决 + 部分解决 + 未解决）；"
                       "按回访时的主办单位归属，并单工单不计",
    "satisfaction_rate": "满意率 =（非常满意 + 满意 + 基本满意）/ 统计期内回访且有满意度评价的工单数",
    "exemptions": "考核口径：已免责（含申诉通过）的工单不计入该单位的三项比率",
}

_COUNTS = ("sign_met", "sign_due", "resolved", "partly", "unresolved", "satisfaction_5", "satisfaction_4",
           "satisfaction_3", "satisfaction_2", "satisfaction_1")


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


async def three_rates(conn: asyncpg.Connection | asyncpg.Pool, period: Period, *, now: datetime,
                      group: str = "unit", exemptions: bool = False) -> list[dict[str, Any]]:
    """One row per unit (or one ``total`` row) with the counts and the three rates."""
    if group not in RATE_GROUPS:
        raise ValidationError(f"参数 group 必须是 {'、'.join(RATE_GROUPS)} 之一，收到 {group!r}", field="group",
                              value=group, code="invalid_choice")
    rows = await conn.fetch(
        """WITH clocks AS (
               SELECT k.unit_code,
                      count(*) FILTER (WHERE k.outcome = 'met') AS sign_met,
                      count(*) FILTER (WHERE k.outcome IN ('met', 'missed')
                                          OR (k.stopped_at IS NULL AND k.deadline < $3)) AS sign_due
                 FROM sla_clocks k
                WHERE k.stage = 'sign' AND k.leg_id IS NOT NULL AND k.unit_code IS NOT NULL
                  AND k.started_at >= $1 AND k.started_at < $2
                  AND NOT ($4 AND EXISTS (SELECT 1 FROM assessment_exemptions e WHERE e.ticket_id = k.ticket_id
                                          AND e.unit_code = k.unit_code AND e.revoked_at IS NULL))
                GROUP BY 1
           ), called AS (
               SELECT t.lead_unit_code AS unit_code,
                      count(*) FILTER (WHERE t.resolution = 'resolved') AS resolved,
                      count(*) FILTER (WHERE t.resolution = 'partly') AS partly,
                      count(*) FILTER (WHERE t.resolution = 'unresolved') AS unresolved,
                      count(*) FILTER (WHERE t.satisfaction = 5) AS satisfaction_5,
                      count(*) FILTER (WHERE t.satisfaction = 4) AS satisfaction_4,
                      count(*) FILTER (WHERE t.satisfaction = 3) AS satisfaction_3,
                      count(*) FILTER (WHERE t.satisfaction = 2) AS satisfaction_2,
                      count(*) FILTER (WHERE t.satisfaction = 1) AS satisfaction_1
                 FROM tickets t
                WHERE t.callback_at >= $1 AND t.callback_at < $2 AND t.master_id IS NULL
                  AND t.lead_unit_code IS NOT NULL
                  AND NOT ($4 AND EXISTS (SELECT 1 FROM assessment_exemptions e WHERE e.ticket_id = t.id
                                          AND e.unit_code = t.lead_unit_code AND e.revoked_at IS NULL))
                GROUP BY 1
           )
           SELECT coalesce(c.unit_code, d.unit_code) AS unit_code, u.name AS unit_name,
                  coalesce(c.sign_met, 0) AS sign_met, coalesce(c.sign_due, 0) AS sign_due,
                  coalesce(d.resolved, 0) AS resolved, coalesce(d.partly, 0) AS partly,
                  coalesce(d.unresolved, 0) AS unresolved,
                  coalesce(d.satisfaction_5, 0) AS satisfaction_5, coalesce(d.satisfaction_4, 0) AS satisfaction_4,
                  coalesce(d.satisfaction_3, 0) AS satisfaction_3, coalesce(d.satisfaction_2, 0) AS satisfaction_2,
                  coalesce(d.satisfaction_1, 0) AS satisfaction_1
             FROM clocks c FULL JOIN called d ON d.unit_code = c.unit_code
             LEFT JOIN units u ON u.code = coalesce(c.unit_code, d.unit_code)
            ORDER BY 1""",
        period.start, period.end, now, exemptions)
    items = [dict(r) for r in rows]
    if group == "total":
        total: dict[str, Any] = {"unit_code": None, "unit_name": "全部"}
        total.update({k: sum(i[k] for i in items) for k in _COUNTS})
        items = [total]
    for item in items:
        evaluated = item["resolved"] + item["partly"] + item["unresolved"]
        rated = sum(item[f"satisfaction_{i}"] for i in range(1, 6))
        item.update(
            evaluated=evaluated, rated=rated,
            response_rate=_ratio(item["sign_met"], item["sign_due"]),
            resolution_rate=_ratio(item["resolved"], evaluated),
            satisfaction_rate=_ratio(item["satisfaction_5"] + item["satisfaction_4"] + item["satisfaction_3"], rated),
        )
    return items
