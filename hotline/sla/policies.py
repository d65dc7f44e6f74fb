"""SLA policies in PostgreSQL: seeded from config/sla.yaml, edited through the API."""

from __future__ import annotations

from typing import Any

import asyncpg

from hotline.errors import Conflict, NotFound, ValidationError
from hotline.sla.config import KINDS, STAGES, UNITS, URGENCIES, load_sla_config

_COLUMNS = "id, stage, hotline_number, category_code, urgency, kind, amount, unit, note, updated_at"


async def seed_policies(conn: asyncpg.Connection) -> int:
    """Insert the configured policies that are missing (edited rows are kept)."""
    count = 0
    for p in load_sla_config().policies:
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
        raise ValidationError(f"unknown field(s) {sorted(unknown)}", field=sorted(unknown)[0])
    out = dict(body)
    if not partial:
        for f in ("stage", "amount", "unit"):
            if f not in out:
                raise ValidationError(f"{f} is required", field=f)
    if "stage" in out and out["stage"] not in STAGES:
        raise ValidationError(f"stage must be one of {list(STAGES)}, got {out['stage']!r}", field="stage")
    if "unit" in out and out["unit"] not in UNITS:
        raise ValidationError(f"unit must be one of {list(UNITS)}, got {out['unit']!r}", field="unit")
    if "urgency" in out and out["urgency"] not in (None, *URGENCIES):
        raise ValidationError(f"unknown urgency {out['urgency']!r}", field="urgency")
    if "kind" in out and out["kind"] not in (None, *KINDS):
        raise ValidationError(f"unknown kind {out['kind']!r}", field="kind")
    if "amount" in out:
        amount = out["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount <= 10000:
            raise ValidationError(f"amount must be a positive number, got {amount!r}", field="amount")
        out["amount"] = float(amount)
    return out


async def _refs(conn: asyncpg.Connection, p: dict[str, Any]) -> None:
    if p.get("hotline_number") and not await conn.fetchval("SELECT true FROM hotlines WHERE number = $1",
                                                           p["hotline_number"]):
        raise ValidationError(f"unknown line {p['hotline_number']!r}", field="hotline_number")
    if p.get("category_code") and not await conn.fetchval("SELECT true FROM ticket_categories WHERE code = $1",
                                                          p["category_code"]):
        raise ValidationError(f"unknown category {p['category_code']!r}", field="category_code")


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
        raise Conflict("a policy for this stage, line, category, urgency and kind exists; edit it") from None
    return dict(row)


async def update_policy(conn: asyncpg.Connection, policy_id: int, body: dict[str, Any], *,
                        user_id: int | None) -> dict[str, Any]:
    p = _check(body, partial=True)
    await _refs(conn, p)
    current = await conn.fetchrow(f"SELECT {_COLUMNS} FROM sla_policies WHERE id = $1 FOR UPDATE",  # noqa: S608
                                  policy_id)
    if current is None:
        raise NotFound(f"no SLA policy {policy_id}", field="id")
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
        raise Conflict("another policy has this stage, line, category, urgency and kind") from None
    return dict(row)


async def delete_policy(conn: asyncpg.Connection, policy_id: int) -> None:
    result = await conn.execute("DELETE FROM sla_policies WHERE id = $1", policy_id)
    if result.endswith(" 0"):
        raise NotFound(f"no SLA policy {policy_id}", field="id")
