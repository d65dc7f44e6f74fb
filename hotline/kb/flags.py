"""Agents' flags on outdated or wrong articles (from a call); they land with the
article's owner unit."""

from __future__ import annotations

from typing import Any

from hotline.auth.model import User
from hotline.errors import Conflict, Forbidden, NotFound, ValidationError
from hotline.events import Topic, publish
from hotline.kb.access import editor_scope, require_edit
from hotline.kb.articles import get_article, record_history
from hotline.kb.db import Db, savepoint
from hotline.kb.present import row_json

TOPIC_FLAGGED = Topic.KB_FLAGGED


async def raise_flag(db: Db, user: User, article_id: str, reason: str, *, call_id: int | None = None) -> dict[str, Any]:
    """An agent marks an article as outdated/wrong from a call; it lands with the owner unit."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("请说明哪里过时或有误", field="reason")
    if len(reason) > 2000:
        raise ValidationError("说明不能超过 2000 字", field="reason")
    async with savepoint(db) as conn:
        row = await get_article(conn, article_id)
        if call_id is not None and not await conn.fetchval("SELECT 1 FROM calls WHERE id = $1", call_id):
            raise ValidationError(f"通话 {call_id} 不存在", field="call_id", value=call_id)
        flag = await conn.fetchrow(
            """INSERT INTO kb_flags (article_id, unit_code, call_id, reason, raised_by)
               VALUES ($1, $2, $3, $4, $5) RETURNING *""",
            article_id, row["unit_code"], call_id, reason, user.id)
        await record_history(conn, article_id, row["version"], "flag", state_from=row["state"], state_to=row["state"],
                       note=reason, user=user)
        await publish(conn, TOPIC_FLAGGED, {"flag_id": flag["id"], "article_id": article_id,
                                           "unit_code": row["unit_code"]})
        return row_json(flag)


async def resolve_flag(db: Db, user: User, flag_id: int, *, resolution: str, dismiss: bool = False) -> dict[str, Any]:
    async with savepoint(db) as conn:
        flag = await conn.fetchrow("SELECT * FROM kb_flags WHERE id = $1 FOR UPDATE", flag_id)
        if flag is None:
            raise NotFound(f"标记 {flag_id} 不存在", field="id")
        await require_edit(conn, user, flag["unit_code"])
        if flag["state"] != "open":
            raise Conflict("该标记已处理", field="state", state=flag["state"])
        row = await conn.fetchrow(
            """UPDATE kb_flags SET state = $2, resolved_by = $3, resolved_at = now(), resolution = $4
                WHERE id = $1 RETURNING *""",
            flag_id, "dismissed" if dismiss else "resolved", user.id, (resolution or "").strip() or None)
        return row_json(row)


async def list_flags(db: Db, user: User, *, unit_code: str | None = None, state: str | None = "open",
                     limit: int = 100) -> list[dict[str, Any]]:
    scope = await editor_scope(db, user)
    if scope is not None and unit_code is not None and unit_code not in scope:
        raise Forbidden("只能查看本单位的标记", field="unit")
    units_filter = None if scope is None else sorted(scope)
    rows = await db.fetch(
        """SELECT f.*, a.title, u.username AS raised_by_name
             FROM kb_flags f JOIN kb_articles a ON a.id = f.article_id
             LEFT JOIN users u ON u.id = f.raised_by
            WHERE ($1::text IS NULL OR f.unit_code = $1)
              AND ($2::text[] IS NULL OR f.unit_code = ANY($2))
              AND ($3::text IS NULL OR f.state = $3)
            ORDER BY f.raised_at DESC LIMIT $4""",
        unit_code, units_filter, state, limit)
    return [row_json(r) for r in rows]

