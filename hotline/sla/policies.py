"""SLA policies in PostgreSQL: seeded from config/sla.yaml, edited through the API."""

from __future__ import annotations

from typing import Any

import asyncpg

from hotline.errors import Conflict, NotFound, ValidationError
from hotline.sla.config import KINDS, STAGES, UNITS, URGENCIES, SlaConfig, sla_config

_COLUMNS = "id, stage, hotline_number, category_code, urgency, kind, amount, unit, note, updated_at"


async def seed_policies(conn: asyncpg.Connection, rules: SlaConfig | None = None) -> int:
    """Insert the configured policies that are missing (edited rows are kept)."""
    count = 0
    for p in (rules or sla_config(None)).policies:
        inserted = await conn.fetchval(
            """INSERT INTO sla_policies (stage, hotline_number, category_code, urgency, kind, amount, unit, note)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (stage, hotline_number, category_code, urgency, kind) DO NOTHING RETURNING id""",
            p["stage"], p.get("hotline_number"), p.get("category_code"), p.get("urgency"), p.get("kind"),
            float(p["amount"]), p["unit"], p.get("note", ""),
        )
        count += inserted is not None
    return count


async def list_policies(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM sla_policies ORDER BY stage, id")  # noqa: S608
    return [dict(r) for r in rows]


def _check(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    allowed = {"stage", "hotline_number", "category_code", "urgency", "kind", "amount", "unit", "note"}
    unknown = set(body) - allowed
    if unknown:
        raise ValidationError(f"不能设置字段 {'、'.join(sorted(unknown))}；可设置的字段：{'、'.join(sorted(allowed))}",
                              field=sorted(unknown)[0], value=sorted(unknown), code="unknown_field")
    out = dict(body)
    if not partial:
        for f in ("stage", "amount", "unit"):
            if f not in out:
                raise ValidationError(f"缺少必填字段 {f}", field=f, code="missing_field")
    if "stage" in out and out["stage"] not in STAGES:
        raise ValidationError(f"环节 stage 必须是 {'、'.join(STAGES)} 之一，收到 {out['stage']!r}", field="stage",
                              value=out["stage"], code="invalid_choice")
    if "unit" in out and out["unit"] not in UNITS:
        raise ValidationError(f"时限单位 unit 必须是 {'、'.join(UNITS)} 之一，收到 {out['unit']!r}", field="unit",
                              value=out["unit"], code="invalid_choice")
    if "urgency" in out and out["urgency"] not in (None, *URGENCIES):
        raise ValidationError(f"缓急程度 urgency 必须是 {'、'.join(URGENCIES)} 之一，收到 {out['urgency']!r}",
                              field="urgency", value=out["urgency"], code="invalid_choice")
    if "kind" in out and out["kind"] not in (None, *KINDS):
        raise ValidationError(f"诉求类型 kind 必须是 {'、'.join(KINDS)} 之一，收到 {out['kind']!r}", field="kind",
                              value=out["kind"], code="invalid_choice")
    if "amount" in out:
        amount = out["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount <= 10000:
            raise ValidationError(f"时限 amount 必须是 0 到 10000 之间的正数，收到 {amount!r}", field="amount",
                                  value=amount, code="out_of_range")
        out["amount"] = float(amount)
    return out


async def _refs(conn: asyncpg.Connection, p: dict[str, Any]) -> None:
    if p.get("hotline_number") and not await conn.fetchval("SELECT true FROM hotlines WHERE number = $1",
                                                           p["hotline_number"]):
        raise ValidationError(f"未知的热线号码 {p['hotline_number']!r}", field="hotline_number",
                              value=p["hotline_number"], code="unknown_line")
    if p.get("category_code") and not await conn.fetchval("SELECT true FROM ticket_categories WHERE code = $1",
                                                          p["category_code"]):
        raise ValidationError(f"未知的诉求分类 {p['category_code']!r}", field="category_code",
                              value=p["category_code"], code="unknown_category")


async def create_policy(conn: asyncpg.Connection, body: dict[str, Any], *, user_id: int | None) -> dict[str, Any]:
    p = _check(body, partial=False)
    await _refs(conn, p)
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO sla_policies (stage, hotline_number, category_code, urgency, kind, amount, unit, note,
                                          updated_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_COLUMNS}""",  # noqa: S608
            p["stage"], p.get("hotline_number"), p.get("category_code"), p.get("urgency"), p.get("kind"),
            p["amount"], p["unit"], p.get("note", ""), user_id,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict("相同环节、线路、分类、缓急程度和诉求类型的时限规则已存在，请修改该规则",
                       code="policy_exists") from None
    return dict(row)


async def update_policy(conn: asyncpg.Connection, policy_id: int, body: dict[str, Any], *,
                        user_id: int | None) -> dict[str, Any]:
    p = _check(body, partial=True)
    await _refs(conn, p)
    current = await conn.fetchrow(f"SELECT {_COLUMNS} FROM sla_policies WHERE id = $1 FOR UPDATE",  # noqa: S608
                                  policy_id)
    if current is None:
        raise NotFound(f"没有时限规则 {policy_id}", field="id", value=policy_id)
    merged = {**dict(current), **p}
    try:
        row = await conn.fetchrow(
            f"""UPDATE sla_policies SET stage = $2, hotline_number = $3, category_code = $4, urgency = $5,
                       kind = $6, amount = $7, unit = $8, note = $9, updated_by = $10, updated_at = now()
                 WHERE id = $1 RETURNING {_COLUMNS}""",  # noqa: S608
            policy_id, merged["stage"], merged["hotline_number"], merged["category_code"], merged["urgency"],
            merged["kind"], merged["amount"], merged["unit"], merged["note"], user_id,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict("已有另一条相同环节、线路、分类、缓急程度和诉求类型的时限规则", code="policy_exists") from None
    return dict(row)


async def delete_policy(conn: asyncpg.Connection, policy_id: int) -> None:
    result = await conn.execute("DELETE FROM sla_policies WHERE id = $1", policy_id)
    if result.endswith(" 0"):
        raise NotFound(f"没有时限规则 {policy_id}", field="id", value=policy_id)
