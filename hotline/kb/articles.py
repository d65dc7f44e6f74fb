"""Articles in PostgreSQL (the source of truth): create, edit, the review workflow,
validity expiry, lists and history. Every change is written to ``kb_article_history``
and, when it touches what the index holds, to the shared change log
(:mod:`hotline.kb.changes`), in the transaction of the change.

Functions take a pool or a connection; mutations run in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import asyncpg

from hotline.auth.model import User
from hotline.errors import Conflict, Forbidden, NotFound, ValidationError
from hotline.kb.access import can_edit, is_editor, is_reviewer, require_edit, reviews_everything
from hotline.kb.changes import record_articles
from hotline.kb.db import Db, hotline_numbers, savepoint, units
from hotline.kb.model import (
    CONTENT_FIELDS,
    ID_RE,
    REVISION_TRANSITIONS,
    STATE_NAMES_ZH,
    STATES,
    TRANSITIONS,
    FieldProblem,
    validate_content,
)
from hotline.kb.present import article_json, iso, row_json

ARTICLE_COLUMNS = """id, title, category, unit_code, material_type, hotlines, keywords, body,
    valid_from, valid_to, review_due, state, version, revision, revision_state, revision_by,
    source, views, created_by, created_at, updated_by, updated_at, published_by, published_at"""


class InvalidArticle(ValidationError):
    code = "kb_invalid"

    def __init__(self, problems: list[FieldProblem]) -> None:
        first = problems[0]
        super().__init__("；".join(f"{p.field}: {p.message}" for p in problems), field=first.field,
                         problems=[p.to_json() for p in problems])


class IllegalTransition(Conflict):
    code = "kb_illegal_transition"


def snapshot(content: Mapping[str, Any]) -> dict[str, Any]:
    return {k: iso(content[k]) for k in CONTENT_FIELDS if k in content}


def _fromsnapshot(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(snapshot)
    for key in ("valid_from", "valid_to", "review_due"):
        if isinstance(out.get(key), str):
            out[key] = dt.date.fromisoformat(out[key])
    return out


async def get_article(db: Db, article_id: str, *, for_update: bool = False) -> asyncpg.Record:
    row = await db.fetchrow(
        f"SELECT {ARTICLE_COLUMNS} FROM kb_articles WHERE id = $1"  # noqa: S608 (constant columns)
        + (" FOR UPDATE" if for_update else ""),
        article_id)
    if row is None:
        raise NotFound(f"知识 {article_id} 不存在", field="id")
    return row


async def record_history(conn: asyncpg.Connection, article_id: str, version: int, action: str, *,
                   state_from: str | None, state_to: str | None, changed: list[str] | None = None,
                   snapshot: dict[str, Any] | None = None, note: str | None = None,
                   user: User | None = None, actor_name: str | None = None) -> None:
    await conn.execute(
        """INSERT INTO kb_article_history (article_id, version, action, state_from, state_to,
               changed_fields, snapshot, note, actor_id, actor_name)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        article_id, version, action, state_from, state_to, changed or [], snapshot, note,
        user.id if user else None, user.username if user else actor_name)


async def validate(db: Db, data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    clean, problems = validate_content(data, units=await units(db), hotlines=await hotline_numbers(db),
                                       partial=partial)
    if problems:
        raise InvalidArticle(problems)
    return clean


async def _check_title(conn: asyncpg.Connection, title: str, article_id: str | None) -> None:
    other = await conn.fetchval("SELECT id FROM kb_articles WHERE title = $1 AND id IS DISTINCT FROM $2",
                                title, article_id)
    if other is not None:
        raise Conflict(f"标题与知识 {other} 重复：{title}", field="title", duplicate_of=other)


async def next_id(conn: asyncpg.Connection, unit_code: str) -> str:
    n = await conn.fetchval("SELECT count(*) + 1 FROM kb_articles WHERE unit_code = $1", unit_code)
    while True:
        candidate = f"kb-{unit_code}-{n:04d}"
        if not await conn.fetchval("SELECT 1 FROM kb_articles WHERE id = $1", candidate):
            return candidate
        n += 1


async def create_article(db: Db, user: User, data: Mapping[str, Any]) -> asyncpg.Record:
    """A new article in ``draft``, owned by its issuing unit (the user must edit that unit)."""
    content = await validate(db, data)
    article_id = data.get("id")
    if article_id is not None and (not isinstance(article_id, str) or not ID_RE.match(article_id)):
        raise ValidationError("编号只能包含字母、数字、-、_、.（最长 64）", field="id", value=article_id)
    await require_edit(db, user, content["unit_code"])
    async with savepoint(db) as conn:
        await _check_title(conn, content["title"], None)
        article_id = article_id or await next_id(conn, content["unit_code"])
        if await conn.fetchval("SELECT 1 FROM kb_articles WHERE id = $1", article_id):
            raise Conflict(f"编号 {article_id} 已存在", field="id")
        await conn.execute(
            """INSERT INTO kb_articles (id, title, category, unit_code, material_type, hotlines, keywords,
                   body, valid_from, valid_to, review_due, state, created_by, updated_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, current_date), $10, $11, 'draft', $12, $12)""",
            article_id, content["title"], content["category"], content["unit_code"], content["material_type"],
            content["hotlines"], content["keywords"], content["body"], content["valid_from"],
            content["valid_to"], content["review_due"], user.id)
        await record_history(conn, article_id, 1, "create", state_from=None, state_to="draft",
                       changed=list(CONTENT_FIELDS), snapshot=snapshot(content), user=user)
        await record_articles(conn, [article_id])
        return await get_article(conn, article_id)


async def update_article(db: Db, user: User, article_id: str, data: Mapping[str, Any], *,
                         expected_version: int | None = None) -> asyncpg.Record:
    """Edit content. Drafts and articles in review change in place (new version); a
    published article gets a pending revision and its live text stays visible."""
    changes = await validate(db, data, partial=True)
    if not changes:
        raise ValidationError("没有可修改的字段", field="body")
    async with savepoint(db) as conn:
        row = await get_article(conn, article_id, for_update=True)
        await require_edit(conn, user, row["unit_code"])
        if "unit_code" in changes:
            await require_edit(conn, user, changes["unit_code"])
        if expected_version is not None and expected_version != row["version"]:
            raise Conflict(f"知识已被他人修改（当前版本 {row['version']}），请刷新后再改", field="version",
                           version=row["version"])
        if row["state"] in ("expired", "archived"):
            raise IllegalTransition(f"{STATE_NAMES_ZH[row['state']]}的知识不能直接修改，请先恢复为草稿",
                                    field="state", state=row["state"])
        if "title" in changes:
            await _check_title(conn, changes["title"], article_id)
        if row["state"] == "published":
            base = _fromsnapshot(row["revision"]) if row["revision"] else {k: row[k] for k in CONTENT_FIELDS}
            merged = {**base, **changes}
            changed = [k for k in CONTENT_FIELDS if merged.get(k) != row[k]]
            await conn.execute(
                """UPDATE kb_articles SET revision = $2, revision_state = 'draft', revision_by = $3,
                          updated_by = $3, updated_at = now() WHERE id = $1""",
                article_id, snapshot(merged), user.id)
            await record_history(conn, article_id, row["version"], "revise", state_from="published",
                           state_to="published", changed=changed, snapshot=snapshot(merged), user=user)
            return await get_article(conn, article_id)
        changed = [k for k in CONTENT_FIELDS if k in changes and changes[k] != row[k]]
        if not changed:
            return row
        merged = {**{k: row[k] for k in CONTENT_FIELDS}, **changes}
        version = row["version"] + 1
        await conn.execute(
            """UPDATE kb_articles SET title = $2, category = $3, unit_code = $4, material_type = $5,
                      hotlines = $6, keywords = $7, body = $8, valid_from = $9, valid_to = $10,
                      review_due = $11, version = $12, updated_by = $13, updated_at = now()
                WHERE id = $1""",
            article_id, merged["title"], merged["category"], merged["unit_code"], merged["material_type"],
            merged["hotlines"], merged["keywords"], merged["body"], merged["valid_from"] or row["valid_from"],
            merged["valid_to"], merged["review_due"], version, user.id)
        await record_history(conn, article_id, version, "edit", state_from=row["state"], state_to=row["state"],
                       changed=changed, snapshot=snapshot(merged), user=user)
        await record_articles(conn, [article_id])
        return await get_article(conn, article_id)


async def transition(db: Db, user: User, article_id: str, action: str, *, note: str | None = None,
                     today: dt.date | None = None) -> asyncpg.Record:
    """Apply a workflow action (see :data:`TRANSITIONS`); on a published article with a
    pending revision, submit/publish/reject/discard act on the revision."""
    if action not in TRANSITIONS and action not in REVISION_TRANSITIONS:
        raise ValidationError("action 必须是：" + "、".join(sorted({*TRANSITIONS, *REVISION_TRANSITIONS})),
                              field="action", value=action)
    today = today or await db.fetchval("SELECT current_date")
    async with savepoint(db) as conn:
        row = await get_article(conn, article_id, for_update=True)
        unit = row["unit_code"]
        on_revision = row["state"] == "published" and action in REVISION_TRANSITIONS and (
            row["revision_state"] is not None or action == "discard")
        rule = REVISION_TRANSITIONS[action] if on_revision else TRANSITIONS.get(action)
        current = row["revision_state"] if on_revision else row["state"]
        who = rule.who if rule is not None else REVISION_TRANSITIONS[action].who
        if who == "reviewer" and not await is_reviewer(conn, user, unit):
            raise Forbidden("发布、退回、过期和归档需要知识审核员（班长、管理员或本单位知识管理员）",
                            field="action", action=action)
        if who == "editor":
            await require_edit(conn, user, unit)
        if rule is None or current not in rule.sources:
            raise IllegalTransition(
                f"当前状态（{STATE_NAMES_ZH.get(current or '', current or '无修订')}）不能执行“{action}”",
                field="action", state=row["state"], revision_state=row["revision_state"], action=action)
        if on_revision:
            return await _revision_step(conn, user, row, action, rule.target, note)
        target = rule.target
        if action == "publish" and row["valid_to"] is not None and row["valid_to"] < today:
            raise IllegalTransition(f"有效期已于 {row['valid_to']} 结束，不能发布；请先修改有效期",
                                    field="valid_to", valid_to=row["valid_to"].isoformat())
        await conn.execute(
            """UPDATE kb_articles SET state = $2, updated_by = $3, updated_at = now(),
                      published_by = CASE WHEN $2 = 'published' THEN $3 ELSE published_by END,
                      published_at = CASE WHEN $2 = 'published' THEN now() ELSE published_at END,
                      revision = CASE WHEN $2 = 'published' THEN revision ELSE NULL END,
                      revision_state = CASE WHEN $2 = 'published' THEN revision_state ELSE NULL END
                WHERE id = $1""",
            article_id, target, user.id)
        await record_history(conn, article_id, row["version"], action, state_from=row["state"], state_to=target,
                       note=note, user=user)
        await record_articles(conn, [article_id])
        return await get_article(conn, article_id)


async def _revision_step(conn: asyncpg.Connection, user: User, row: asyncpg.Record, action: str,
                         target: str, note: str | None) -> asyncpg.Record:
    article_id = row["id"]
    if action == "publish":
        content = _fromsnapshot(row["revision"])
        await _check_title(conn, content["title"], article_id)
        version = row["version"] + 1
        await conn.execute(
            """UPDATE kb_articles SET title = $2, category = $3, unit_code = $4, material_type = $5,
                      hotlines = $6, keywords = $7, body = $8, valid_from = $9, valid_to = $10,
                      review_due = $11, version = $12, revision = NULL, revision_state = NULL,
                      revision_by = NULL, updated_by = $13, updated_at = now(), published_by = $13,
                      published_at = now()
                WHERE id = $1""",
            article_id, content["title"], content["category"], content["unit_code"], content["material_type"],
            content["hotlines"], content["keywords"], content["body"], content["valid_from"],
            content["valid_to"], content["review_due"], version, user.id)
        changed = [k for k in CONTENT_FIELDS if content.get(k) != row[k]]
        await record_history(conn, article_id, version, "publish", state_from="published", state_to="published",
                       changed=changed, snapshot=row["revision"], note=note, user=user)
        await record_articles(conn, [article_id])
    elif target:
        await conn.execute("UPDATE kb_articles SET revision_state = $2, updated_by = $3, updated_at = now() "
                           "WHERE id = $1", article_id, target, user.id)
        await record_history(conn, article_id, row["version"], f"revision_{action}", state_from=row["revision_state"],
                       state_to=target, note=note, user=user)
    else:  # discard
        await conn.execute("UPDATE kb_articles SET revision = NULL, revision_state = NULL, revision_by = NULL, "
                           "updated_by = $2, updated_at = now() WHERE id = $1", article_id, user.id)
        await record_history(conn, article_id, row["version"], "revision_discard", state_from=row["revision_state"],
                       state_to=None, note=note, user=user)
    return await get_article(conn, article_id)


async def expire_past_validity(db: Db, *, today: dt.date | None = None) -> list[str]:
    """Published articles whose validity ended become ``expired`` (periodic job)."""
    today = today or await db.fetchval("SELECT current_date")
    async with savepoint(db) as conn:
        rows = await conn.fetch(
            """UPDATE kb_articles SET state = 'expired', updated_at = now()
                WHERE state = 'published' AND valid_to IS NOT NULL AND valid_to < $1
                RETURNING id, version""", today)
        for r in rows:
            await record_history(conn, r["id"], r["version"], "expire", state_from="published", state_to="expired",
                           note="有效期届满，系统自动设为过期", actor_name="system")
        if rows:
            await record_articles(conn, [r["id"] for r in rows])
    return [r["id"] for r in rows]


async def list_articles(db: Db, user: User, *, unit_code: str | None = None, state: str | None = None,
                        title: str | None = None, hotline: str | None = None, page: int = 1,
                        per_page: int = 20) -> dict[str, Any]:
    """Editors' list straight from PostgreSQL; non-editors see published articles only."""
    if state is not None and state not in STATES:
        raise ValidationError("state 必须是：" + "、".join(STATES), field="state", value=state)
    editor = await is_editor(db, user)
    if not editor and state not in (None, "published"):
        raise Forbidden("只有知识编辑可以查看未发布的知识", field="state")
    states = [state] if state else (list(STATES) if editor else ["published"])
    pattern = None if not title else "%" + title.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    where = """state = ANY($1) AND ($2::text IS NULL OR unit_code = $2) AND ($3::text IS NULL OR title ILIKE $3)
               AND ($4::text IS NULL OR $4 = ANY(hotlines))"""
    # ``where`` is a constant; every value is a parameter
    total = await db.fetchval(f"SELECT count(*) FROM kb_articles WHERE {where}",  # noqa: S608
                              states, unit_code, pattern, hotline)
    rows = await db.fetch(
        f"""SELECT id, title, category, unit_code, material_type, hotlines, state, version, revision_state,
                   valid_from, valid_to, review_due, updated_at
              FROM kb_articles WHERE {where} ORDER BY updated_at DESC, id LIMIT $5 OFFSET $6""",  # noqa: S608
        states, unit_code, pattern, hotline, per_page, (page - 1) * per_page)
    return {"items": [article_json(r) for r in rows], "total": total, "page": page, "per_page": per_page}


async def history(db: Db, article_id: str) -> list[dict[str, Any]]:
    await get_article(db, article_id)
    rows = await db.fetch(
        """SELECT id, version, action, state_from, state_to, changed_fields, snapshot, note, actor_id,
                  actor_name, at FROM kb_article_history WHERE article_id = $1 ORDER BY id""", article_id)
    return [row_json(r) for r in rows]


async def count_view(db: Db, article_id: str) -> None:
    await db.execute("UPDATE kb_articles SET views = views + 1 WHERE id = $1", article_id)


async def read_article(db: Db, user: User, article_id: str) -> dict[str, Any]:
    """One article as a user may see it (non-editors: published only, and the read
    counts as a view; editors also get its open flags)."""
    row = await get_article(db, article_id)
    editor = await can_edit(db, user, row["unit_code"])
    if not (editor or await reviews_everything(db, user)) and row["state"] != "published":
        raise NotFound(f"知识 {row['id']} 不存在或未发布", field="id")
    if not editor:
        await count_view(db, row["id"])
    item = article_json(row, editor=editor)
    item["can_edit"] = editor
    item["can_review"] = await is_reviewer(db, user, row["unit_code"])
    if editor:
        flags = await db.fetch(
            """SELECT f.*, a.title, u.username AS raised_by_name
                 FROM kb_flags f JOIN kb_articles a ON a.id = f.article_id
                 LEFT JOIN users u ON u.id = f.raised_by
                WHERE f.article_id = $1 AND f.state = 'open' ORDER BY f.raised_at DESC""", row["id"])
        item["open_flags"] = [row_json(f) for f in flags]
    return item


async def article_history(db: Db, user: User, article_id: str) -> list[dict[str, Any]]:
    """An article's history, for its editors and the reviewers of every unit."""
    row = await get_article(db, article_id)
    if not await can_edit(db, user, row["unit_code"]) and not await reviews_everything(db, user):
        raise NotFound(f"知识 {row['id']} 的历史只对编辑可见", field="id")
    return await history(db, row["id"])


async def count_by_state(db: Db) -> dict[str, int]:
    rows = await db.fetch("SELECT state, count(*) AS n FROM kb_articles GROUP BY state ORDER BY state")
    return {r["state"]: int(r["n"]) for r in rows}
