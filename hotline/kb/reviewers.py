"""Knowledge administrators (reviewers per unit) and their worklist: what is due for
review per owner unit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hotline.auth.audit import audit
from hotline.auth.model import User
from hotline.errors import Forbidden, NotFound, ValidationError
from hotline.kb.access import editor_scope
from hotline.kb.db import Db, savepoint
from hotline.kb.present import row_json


async def list_reviewers(db: Db) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT r.user_id, u.username, u.display_name, r.unit_code, r.granted_at
             FROM kb_reviewers r JOIN users u ON u.id = r.user_id ORDER BY u.username, r.unit_code""")
    return [row_json(r) for r in rows]


async def grant_reviewer(db: Db, admin: User, user_id: int, unit_code: str | None, *,
                         remote_addr: str | None = None) -> None:
    """Name a knowledge administrator (audited in the same transaction)."""
    if not await db.fetchval("SELECT 1 FROM users WHERE id = $1", user_id):
        raise NotFound(f"用户 {user_id} 不存在", field="user_id")
    if unit_code is not None and not await db.fetchval("SELECT 1 FROM units WHERE code = $1", unit_code):
        raise ValidationError(f"单位 {unit_code} 不存在", field="unit_code")
    async with savepoint(db) as conn:
        await conn.execute(
            """INSERT INTO kb_reviewers (user_id, unit_code, granted_by) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING""", user_id, unit_code, admin.id)
        await audit(conn, "kb_reviewer_granted", user=admin, object_type="user", object_id=user_id,
                    detail={"unit_code": unit_code}, remote_addr=remote_addr)


async def revoke_reviewer(db: Db, admin: User, user_id: int, unit_code: str | None, *,
                          remote_addr: str | None = None) -> None:
    """Withdraw a knowledge administrator's review right (audited in the same transaction)."""
    async with savepoint(db) as conn:
        result = await conn.execute(
            "DELETE FROM kb_reviewers WHERE user_id = $1 AND unit_code IS NOT DISTINCT FROM $2", user_id, unit_code)
        if not result.endswith(" 1"):
            raise NotFound("没有这条审核员授权", field="user_id")
        await audit(conn, "kb_reviewer_revoked", user=admin, object_type="user", object_id=user_id,
                    detail={"unit_code": unit_code}, remote_addr=remote_addr)


async def review_due(db: Db, user: User, *, unit_code: str | None = None, within_days: int = 30,
                     today: dt.date | None = None) -> dict[str, Any]:
    """Articles due for review (review date or end of validity within ``within_days``),
    and open flags, grouped per owner unit — the knowledge administrator's worklist."""
    today = today or await db.fetchval("SELECT current_date")
    scope = await editor_scope(db, user)
    if scope is not None and not scope:
        raise Forbidden("只有知识编辑可以查看复核清单")
    if scope is not None and unit_code is not None and unit_code not in scope:
        raise Forbidden("只能查看本单位的复核清单", field="unit")
    units_filter = None if scope is None else sorted(scope)
    limit_day = today + dt.timedelta(days=within_days)
    rows = await db.fetch(
        """SELECT a.id, a.title, a.unit_code, a.state, a.review_due, a.valid_to, a.version,
                  (SELECT count(*) FROM kb_flags f WHERE f.article_id = a.id AND f.state = 'open') AS open_flags
             FROM kb_articles a
            WHERE a.state IN ('published', 'expired')
              AND ($1::text IS NULL OR a.unit_code = $1) AND ($2::text[] IS NULL OR a.unit_code = ANY($2))
              AND (a.review_due <= $3 OR a.valid_to <= $3
                   OR EXISTS (SELECT 1 FROM kb_flags f WHERE f.article_id = a.id AND f.state = 'open'))
            ORDER BY a.unit_code, least(a.review_due, a.valid_to) NULLS LAST, a.id""",
        unit_code, units_filter, limit_day)
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        item = row_json(r)
        reasons = []
        if r["review_due"] is not None and r["review_due"] <= limit_day:
            reasons.append("overdue_review" if r["review_due"] < today else "review_due")
        if r["valid_to"] is not None and r["valid_to"] <= limit_day:
            reasons.append("expired" if r["valid_to"] < today else "validity_ending")
        if r["open_flags"]:
            reasons.append("flagged")
        item["reasons"] = reasons
        by_unit.setdefault(r["unit_code"], []).append(item)
    return {"today": today.isoformat(), "within_days": within_days,
            "units": [{"unit_code": u, "items": items, "count": len(items)} for u, items in by_unit.items()]}

