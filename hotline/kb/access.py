"""Who may do what in the knowledge base: reviewers (per unit or all units) and
editors (co-building: a liaison edits their own unit's articles)."""

from __future__ import annotations

from hotline.auth.model import User
from hotline.errors import Forbidden
from hotline.kb.db import Db

REVIEWER_ROLES = ("supervisor", "admin")


async def reviewer_scope(db: Db, user: User) -> set[str] | None:
    """Units the user reviews: ``None`` means every unit; an empty set means none."""
    if user.has_role(*REVIEWER_ROLES):
        return None
    rows = await db.fetch("SELECT unit_code FROM kb_reviewers WHERE user_id = $1", user.id)
    if any(r["unit_code"] is None for r in rows):
        return None
    return {r["unit_code"] for r in rows}


async def is_reviewer(db: Db, user: User, unit_code: str) -> bool:
    scope = await reviewer_scope(db, user)
    return scope is None or unit_code in scope


async def editor_scope(db: Db, user: User) -> set[str] | None:
    """Units whose articles the user edits (co-building): ``None`` = every unit."""
    scope = await reviewer_scope(db, user)
    if scope is None:
        return None
    if user.has_role("liaison") and user.unit_code:
        scope = scope | {user.unit_code}
    return scope


async def can_edit(db: Db, user: User, unit_code: str) -> bool:
    scope = await editor_scope(db, user)
    return scope is None or unit_code in scope


async def is_editor(db: Db, user: User) -> bool:
    scope = await editor_scope(db, user)
    return scope is None or bool(scope)


async def require_edit(db: Db, user: User, unit_code: str) -> None:
    if not await can_edit(db, user, unit_code):
        raise Forbidden(f"只能编辑本单位的知识（本条属于 {unit_code}）", field="unit_code", unit_code=unit_code)


async def reviews_everything(db: Db, user: User) -> bool:
    """A reviewer of every unit (supervisors, admins, named all-unit reviewers)."""
    return await reviewer_scope(db, user) is None
