"""Unit assessment (考核): a composite score per handling unit and period from the three
rates (hotline.reports.rates, with exemptions applied), a ranking, appeals (申诉: a unit
asks, the centre approves or rejects, each with a reason) and exemptions (免责: a
ticket left out of a unit's figures). Every change writes its audit row in the same
transaction. Definitions: docs/RATES.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from hotline.auth import audit
from hotline.auth.model import User
from hotline.config import Settings, section_settings
from hotline.errors import ConfigError, Conflict, Forbidden, NotFound, ValidationError
from hotline.reports.metrics import Period
from hotline.reports.rates import three_rates

RATES = ("response_rate", "resolution_rate", "satisfaction_rate")


@dataclass(frozen=True, slots=True)
class AssessmentSettings:
    #: weights of the three rates in the composite score (any scale; they are normalised).
    #: Default after Beijing's 接诉即办 assessment: response 10 %, resolution 45 %, satisfaction 45 %.
    response_weight: float = 10.0
    resolution_weight: float = 45.0
    satisfaction_weight: float = 45.0
    #: a unit is ranked only with at least this many assessed items (sign clocks + called-back tickets)
    min_items: int = 1

    def weights(self) -> dict[str, float]:
        return {"response_rate": self.response_weight, "resolution_rate": self.resolution_weight,
                "satisfaction_rate": self.satisfaction_weight}


def assessment_settings(settings: Settings) -> AssessmentSettings:
    """``[assessment]``, validated (the node refuses to start on bad weights)."""
    cfg = section_settings(settings, "assessment", AssessmentSettings)
    for name, weight in cfg.weights().items():
        if weight < 0:
            key = name.replace("_rate", "_weight")
            raise ConfigError(f"[assessment] {key} must be ≥ 0, got {weight}", field=f"assessment.{key}")
    if sum(cfg.weights().values()) <= 0:
        raise ConfigError("[assessment] at least one weight must be above 0", field="assessment.response_weight")
    if cfg.min_items < 0:
        raise ConfigError(f"[assessment] min_items must be ≥ 0, got {cfg.min_items}", field="assessment.min_items")
    return cfg


def composite(row: dict[str, Any], cfg: AssessmentSettings) -> float | None:
    """100 × Σ weight·rate / Σ weight over the rates the unit has data for (a rate without
    a denominator neither helps nor hurts); None without any. Computed from the counts,
    not from the rounded rates."""
    exact = {
        "response_rate": (row["sign_met"], row["sign_due"]),
        "resolution_rate": (row["resolved"], row["evaluated"]),
        "satisfaction_rate": (row["satisfaction_5"] + row["satisfaction_4"] + row["satisfaction_3"], row["rated"]),
    }
    total = weight_sum = 0.0
    for name, weight in cfg.weights().items():
        num, den = exact[name]
        if den and weight:
            total += weight * num / den
            weight_sum += weight
    return round(100 * total / weight_sum, 2) if weight_sum else None


async def ranking(conn: asyncpg.Connection | asyncpg.Pool, period: Period, cfg: AssessmentSettings, *,
                  now: datetime) -> list[dict[str, Any]]:
    """Units by composite score (highest first); equal scores share a rank (1, 1, 3);
    units below ``min_items`` or without data are listed unranked at the end."""
    rows = await three_rates(conn, period, now=now, exemptions=True)
    exempted = {r["unit_code"]: r["n"] for r in await conn.fetch(
        """SELECT e.unit_code, count(*) AS n FROM assessment_exemptions e JOIN tickets t ON t.id = e.ticket_id
            WHERE e.revoked_at IS NULL AND ((t.callback_at >= $1 AND t.callback_at < $2)
                  OR EXISTS (SELECT 1 FROM sla_clocks k WHERE k.ticket_id = t.id AND k.unit_code = e.unit_code
                             AND k.stage = 'sign' AND k.started_at >= $1 AND k.started_at < $2))
            GROUP BY 1""", period.start, period.end)}
    for r in rows:
        r["score"] = composite(r, cfg)
        r["exempted"] = exempted.get(r["unit_code"], 0)
        r["items"] = r["sign_due"] + r["evaluated"] + r["rated"]
    ranked = sorted((r for r in rows if r["score"] is not None and r["items"] >= cfg.min_items),
                    key=lambda r: (-r["score"], r["unit_code"]))
    previous, rank = None, 0
    for i, r in enumerate(ranked, 1):
        if r["score"] != previous:
            rank, previous = i, r["score"]
        r["rank"] = rank
    unranked = [dict(r, rank=None) for r in rows if r not in ranked]
    return ranked + sorted(unranked, key=lambda r: r["unit_code"])


_APPEAL_STATUS_ZH = {"pending": "待审核", "approved": "已通过", "rejected": "已驳回"}


def _reason(value: Any, field: str = "reason") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"请填写理由 {field}", field=field, value=value, code="missing_field")
    if len(value) > 2000:
        raise ValidationError(f"理由 {field} 最多 2000 个字，收到 {len(value)} 个字", field=field, value=len(value),
                              code="out_of_range")
    return value.strip()


async def _unit_on_ticket(conn: asyncpg.Connection, ticket_id: int, unit_code: str) -> None:
    if not await conn.fetchval("SELECT true FROM ticket_legs WHERE ticket_id = $1 AND unit_code = $2 LIMIT 1",
                               ticket_id, unit_code):
        raise NotFound(f"单位 {unit_code} 没有办理过工单 {ticket_id}", field="ticket", value=ticket_id)


async def file_appeal(conn: asyncpg.Connection, user: User, ticket_id: int, reason: Any, *,
                      remote_addr: str | None = None) -> dict[str, Any]:
    """A unit's liaison asks to leave one of its tickets out of its assessment."""
    if not user.unit_code:
        raise Forbidden("只有承办单位的联络员可以申诉", code="not_a_unit")
    text = _reason(reason)
    async with conn.transaction():
        await _unit_on_ticket(conn, ticket_id, user.unit_code)
        if await conn.fetchval("SELECT true FROM assessment_exemptions WHERE ticket_id = $1 AND unit_code = $2 "
                               "AND revoked_at IS NULL", ticket_id, user.unit_code):
            raise Conflict(f"工单 {ticket_id} 已对单位 {user.unit_code} 免于考核", field="ticket", value=ticket_id,
                           code="already_exempted")
        try:
            row = await conn.fetchrow(
                """INSERT INTO assessment_appeals (ticket_id, unit_code, reason, created_by) VALUES ($1, $2, $3, $4)
                   RETURNING *""", ticket_id, user.unit_code, text, user.id)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"工单 {ticket_id} 已有待审核的申诉", field="ticket", value=ticket_id,
                           code="appeal_pending") from None
        await audit(conn, "assessment_appeal_filed", user=user, object_type="assessment_appeal", object_id=row["id"],
                    detail={"ticket_id": ticket_id, "unit_code": user.unit_code, "reason": text},
                    remote_addr=remote_addr)
        return dict(row)


async def decide_appeal(conn: asyncpg.Connection, user: User, appeal_id: int, decision: Any, reason: Any, *,
                        at: datetime | None = None, remote_addr: str | None = None) -> dict[str, Any]:
    """The centre approves (the ticket is exempted for the unit) or rejects, with a reason."""
    if decision not in ("approve", "reject"):
        raise ValidationError(f"审核结果 decision 必须是 approve（通过）或 reject（驳回），收到 {decision!r}",
                              field="decision", value=decision, code="invalid_choice")
    text = _reason(reason)
    async with conn.transaction():
        appeal = await conn.fetchrow("SELECT * FROM assessment_appeals WHERE id = $1 FOR UPDATE", appeal_id)
        if appeal is None:
            raise NotFound(f"没有申诉 {appeal_id}", field="id", value=appeal_id)
        if appeal["status"] != "pending":
            raise Conflict(f"申诉 {appeal_id} 已审核（{_APPEAL_STATUS_ZH.get(appeal['status'], appeal['status'])}）",
                           field="id", value=appeal_id, code="already_decided")
        status = "approved" if decision == "approve" else "rejected"
        row = await conn.fetchrow(
            """UPDATE assessment_appeals SET status = $2, decided_by = $3, decided_at = coalesce($4, now()),
                      decision_reason = $5 WHERE id = $1 RETURNING *""", appeal_id, status, user.id, at, text)
        exemption = None
        if status == "approved":
            exemption = await _exempt(conn, user, appeal["ticket_id"], appeal["unit_code"],
                                      f"申诉通过：{appeal['reason']}（{text}）", appeal_id=appeal_id,
                                      remote_addr=remote_addr)
        await audit(conn, f"assessment_appeal_{status}", user=user, object_type="assessment_appeal",
                    object_id=appeal_id, detail={"ticket_id": appeal["ticket_id"], "unit_code": appeal["unit_code"],
                                                 "reason": text}, remote_addr=remote_addr)
        return {"appeal": dict(row), "exemption": exemption}


async def _exempt(conn: asyncpg.Connection, user: User, ticket_id: int, unit_code: str, reason: str, *,
                  appeal_id: int | None = None, remote_addr: str | None = None) -> dict[str, Any]:
    try:
        row = await conn.fetchrow(
            """INSERT INTO assessment_exemptions (ticket_id, unit_code, reason, appeal_id, created_by)
               VALUES ($1, $2, $3, $4, $5) RETURNING *""", ticket_id, unit_code, reason, appeal_id, user.id)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"工单 {ticket_id} 已对单位 {unit_code} 免于考核", field="ticket", value=ticket_id,
                       code="already_exempted") from None
    await audit(conn, "assessment_exemption_granted", user=user, object_type="assessment_exemption",
                object_id=row["id"], detail={"ticket_id": ticket_id, "unit_code": unit_code, "reason": reason,
                                             "appeal_id": appeal_id}, remote_addr=remote_addr)
    return dict(row)


async def grant_exemption(conn: asyncpg.Connection, user: User, ticket_id: int, unit_code: Any, reason: Any, *,
                          remote_addr: str | None = None) -> dict[str, Any]:
    """The centre exempts a ticket from a unit's assessment directly (e.g. a force majeure)."""
    if not isinstance(unit_code, str) or not unit_code:
        raise ValidationError(f"请填写单位代码 unit_code，收到 {unit_code!r}", field="unit_code", value=unit_code,
                              code="missing_field")
    text = _reason(reason)
    async with conn.transaction():
        await _unit_on_ticket(conn, ticket_id, unit_code)
        return await _exempt(conn, user, ticket_id, unit_code, text, remote_addr=remote_addr)


async def revoke_exemption(conn: asyncpg.Connection, user: User, exemption_id: int, reason: Any, *,
                           remote_addr: str | None = None) -> dict[str, Any]:
    text = _reason(reason)
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE assessment_exemptions SET revoked_at = now(), revoked_by = $2, revoke_reason = $3
                WHERE id = $1 AND revoked_at IS NULL RETURNING *""", exemption_id, user.id, text)
        if row is None:
            raise NotFound(f"没有生效中的免考核记录 {exemption_id}", field="id", value=exemption_id)
        await audit(conn, "assessment_exemption_revoked", user=user, object_type="assessment_exemption",
                    object_id=exemption_id, detail={"ticket_id": row["ticket_id"], "unit_code": row["unit_code"],
                                                    "reason": text}, remote_addr=remote_addr)
        return dict(row)


async def appeals(conn: asyncpg.Connection | asyncpg.Pool, *, status: str | None = None,
                  unit_code: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    if status is not None and status not in ("pending", "approved", "rejected"):
        raise ValidationError(f"状态 status 必须是 pending（待审核）、approved（通过）或 rejected（驳回），收到 {status!r}",
                              field="status", value=status, code="invalid_choice")
    rows = await conn.fetch(
        """SELECT a.*, t.number AS ticket_number, u.name AS unit_name FROM assessment_appeals a
             JOIN tickets t ON t.id = a.ticket_id JOIN units u ON u.code = a.unit_code
            WHERE ($1::text IS NULL OR a.status = $1) AND ($2::text IS NULL OR a.unit_code = $2)
            ORDER BY a.id DESC LIMIT $3""", status, unit_code, limit)
    return [dict(r) for r in rows]


async def exemptions(conn: asyncpg.Connection | asyncpg.Pool, *, unit_code: str | None = None,
                     active_only: bool = True, limit: int = 200) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT e.*, t.number AS ticket_number, u.name AS unit_name FROM assessment_exemptions e
             JOIN tickets t ON t.id = e.ticket_id JOIN units u ON u.code = e.unit_code
            WHERE ($1::text IS NULL OR e.unit_code = $1) AND (NOT $2 OR e.revoked_at IS NULL)
            ORDER BY e.id DESC LIMIT $3""", unit_code, active_only, limit)
    return [dict(r) for r in rows]
